// The network of the question convt grew from (seed 000): two transposed-convolution layers with
// 3x3 kernels map a 10x10 input to a 14x14 output, trained by gradient descent on the squared
// error. The question's backward pass made the error grow; with convt's exact gradients it falls.
//
//   seed000_training [epochs]

#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>

using Matrix = convt::Matrix<float>;

namespace {

Matrix random_normal(std::mt19937& rng, convt::index_t rows, convt::index_t cols) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix m(rows, cols);
  for (convt::index_t i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// w -= learning_rate * dw
void step(Matrix& w, const Matrix& dw, float learning_rate) {
  for (convt::index_t i = 0; i < w.size(); ++i) w.data()[i] -= learning_rate * dw.data()[i];
}

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 200;
  std::mt19937 rng(0);
  const Matrix input = random_normal(rng, 10, 10);
  Matrix w1 = random_normal(rng, 3, 3);
  Matrix w2 = random_normal(rng, 3, 3);
  const Matrix label = random_normal(rng, 14, 14);
  const float learning_rate = 1e-4f;

  double first_loss = 0, loss = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    // Forward: 10x10 -> 12x12 -> 14x14.
    const Matrix hidden = convt::fcn_forward(w1, input);
    const Matrix output = convt::fcn_forward(w2, hidden);

    // loss = 1/2 sum (output - label)^2, whose gradient for the output is output - label.
    Matrix dz(output.rows(), output.cols());
    loss = 0;
    for (convt::index_t i = 0; i < dz.size(); ++i) {
      dz.data()[i] = output.data()[i] - label.data()[i];
      loss += 0.5 * dz.data()[i] * dz.data()[i];
    }
    if (epoch == 0) first_loss = loss;
    if (epoch % (epochs / 10 > 0 ? epochs / 10 : 1) == 0 || epoch == epochs - 1) {
      std::printf("epoch %4d  loss %12.4f\n", epoch, loss);
    }

    // Backward: the output layer's gradient for its input is the hidden layer's dz.
    const convt::Gradients<float> second = convt::fcn_backward(hidden, dz, w2);
    const convt::Gradients<float> first = convt::fcn_backward(input, second.dx, w1);
    step(w2, second.dw, learning_rate);
    step(w1, first.dw, learning_rate);
  }
  std::printf("loss fell from %.4f to %.4f\n", first_loss, loss);
  return loss < first_loss ? EXIT_SUCCESS : EXIT_FAILURE;
}
