# Cython declarations of convt's C++ API, for extensions that call the kernels themselves:
#
#     from convt cimport ConvGeometry, ConvOptions, forward
#
# Compile the extension as C++17 with the headers of convt.get_include() (and -fopenmp for
# threads); nothing links against convt._core. Names and argument order are the C++ ones
# (cpp/include/convt); where C++ has a default argument, an overload without it stands for it
# (Cython gives extern functions no defaults). Every function may be called without the GIL, and
# every one that can fail is `except +`: convt::Error arrives as ValueError with the C++ message,
# std::bad_alloc as MemoryError. (Cython cannot mark a method both const and `except +`; those
# that allocate or throw are declared non-const, so call them on a non-const object.)
#
# One block per header, in the order the headers build on each other.

from libc.stddef cimport ptrdiff_t
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector


cdef extern from "convt/geometry.hpp" namespace "convt" nogil:
    ctypedef ptrdiff_t index_t
    ctypedef vector[index_t] Shape

    const int max_spatial_dims

    # std::array<index_t, 3>: one value per spatial dimension, right-aligned (a 2-D problem uses
    # entries 1 and 2; ConvGeometry.axis(d) is the entry of spatial dimension d).
    cdef cppclass Extent:
        Extent()
        index_t& operator[](size_t)

    # How the padding amounts are found: as given, none, or TensorFlow's 'same'.
    enum class PaddingRule:
        explicit_values
        valid
        same

    # What the padding holds (PyTorch's padding_mode).
    enum class PaddingMode:
        zeros
        reflect
        replicate
        circular

    const char* padding_mode_name(PaddingMode mode)
    PaddingMode parse_padding_mode(const string& name) except +

    enum class ConvKind:
        convolution
        transposed

    # The arguments of a call as a user gives them: each list holds one value (for every spatial
    # dimension) or one per dimension.
    cdef cppclass ConvOptions:
        ConvOptions()
        Shape stride
        Shape padding
        Shape padding_after
        PaddingRule padding_rule
        PaddingMode padding_mode
        Shape dilation
        index_t groups
        Shape output_padding
        Shape output_size

    # The geometry of one convolution, validated once and passed to every kernel. x is the large
    # ("image") side and y the response side, whatever the layer; the weight is
    # (y_channels, x_channels / groups, kernel...).
    cdef cppclass ConvGeometry:
        ConvGeometry()
        ConvKind kind
        int dims
        bool batched
        index_t batch
        index_t groups
        index_t x_channels
        index_t y_channels
        Extent x_size
        Extent y_size
        Extent kernel
        Extent stride
        Extent padding_before
        Extent padding_after
        PaddingMode padding_mode
        Extent dilation
        Extent output_padding
        Extent output_size_first
        Extent output_size_last

        @staticmethod
        ConvGeometry convolution(int dims, const Shape& input, const Shape& weight) except +
        @staticmethod
        ConvGeometry convolution(int dims, const Shape& input, const Shape& weight,
                                 const ConvOptions& options) except +
        @staticmethod
        ConvGeometry transposed(int dims, const Shape& input, const Shape& weight) except +
        @staticmethod
        ConvGeometry transposed(int dims, const Shape& input, const Shape& weight,
                                const ConvOptions& options) except +

        int axis(int d) const
        string name() except +
        index_t x_spatial() const
        index_t y_spatial() const
        index_t kernel_volume() const
        index_t x_channels_per_group() const
        index_t y_channels_per_group() const
        Shape x_shape() except +
        Shape y_shape() except +
        Shape weight_shape() except +
        Shape input_shape() except +
        Shape output_shape() except +
        index_t input_channels() const
        index_t output_channels() const
        void expect_shape(const char* argument, const Shape& actual,
                          const Shape& expected) except +


cdef extern from "convt/kernels.hpp" namespace "convt" nogil:
    enum class Kernel:
        forward
        backward_input
        backward_weight

    # How a kernel computes a geometry: the choice a Plan makes and reports.
    enum class Algorithm:
        direct
        shifted
        pointwise
        im2col
        col2im

    const char* kernel_name(Kernel kernel)
    const char* algorithm_name(Algorithm algorithm)

    # The three kernels, on C-contiguous (N, C, spatial...) buffers whose shapes are the
    # geometry's; each overwrites its output. conv_forward: y = x (*) w; conv_backward_input:
    # dx from dy; conv_backward_weight: dw from x and dy. T is float or double.
    void conv_forward[T](const ConvGeometry& g, const T* x, const T* w, T* y) except +
    void conv_backward_input[T](const ConvGeometry& g, const T* dy, const T* w, T* dx) except +
    void conv_backward_weight[T](const ConvGeometry& g, const T* x, const T* dy, T* dw) except +
    # output[n, c, ...] += bias[c]; grad_bias[c] = sum of grad_output[n, c, ...].
    void add_bias[T](const ConvGeometry& g, const T* bias, T* output) except +
    void bias_backward[T](const ConvGeometry& g, const T* grad_output, T* grad_bias) except +


cdef extern from "convt/plan.hpp" namespace "convt" nogil:
    # A layer configuration planned once (each kernel's algorithm chosen) and run many times. It
    # holds a mutex and cannot be copied: keep it with `new Plan(g)` / `del`, or in a
    # libcpp.memory.unique_ptr. The methods' shapes are those of kernels.hpp and layer.hpp.
    cdef cppclass Plan:
        Plan(const ConvGeometry& geometry) except +
        const ConvGeometry& geometry()
        Algorithm algorithm(Kernel kernel)
        # Keep the packed weights between calls (for weights that rarely change).
        void keep_weights(bool keep) except +
        bool keeps_weights()
        size_t kept_packings()
        size_t kept_bytes()
        void conv_forward[T](const T* x, const T* w, T* y) except +
        void conv_backward_input[T](const T* dy, const T* w, T* dx) except +
        void conv_backward_weight[T](const T* x, const T* dy, T* dw) except +
        void forward[T](const T* input, const T* weight, const T* bias, T* output) except +
        void backward[T](const T* grad_output, const T* input, const T* weight, T* grad_input,
                         T* grad_weight, T* grad_bias) except +


cdef extern from "convt/layer.hpp" namespace "convt" nogil:
    # A layer of either kind (the geometry's): input_shape() -> output_shape(). bias may be NULL;
    # so may each unwanted gradient.
    void forward[T](const ConvGeometry& g, const T* input, const T* weight, const T* bias,
                    T* output) except +
    void backward[T](const ConvGeometry& g, const T* grad_output, const T* input,
                     const T* weight, T* grad_input, T* grad_weight, T* grad_bias) except +


cdef extern from "convt/matrix.hpp" namespace "convt" nogil:
    # std::array<index_t, 2>: (row stride, column stride).
    cdef cppclass Strides:
        Strides()
        index_t& operator[](size_t)

    # A row-major 2-D matrix, owning its elements or viewing memory owned elsewhere.
    cdef cppclass Matrix[T]:
        Matrix()
        Matrix(index_t rows, index_t cols) except +
        Matrix(const Matrix[T]& other) except +
        Matrix[T]& operator=(const Matrix[T]& other) except +
        # A view of rows x cols elements at data, which must outlive it.
        @staticmethod
        Matrix[T] view(T* data, index_t rows, index_t cols) except +
        index_t rows() const
        index_t cols() const
        index_t size() const
        bool owns() const
        T* data()
        T& operator()(index_t i, index_t j)
        T& at(index_t i, index_t j) except +
        Matrix[T] convolute(const Matrix[T]& kernel) except +
        Matrix[T] convolute(const Matrix[T]& kernel, Strides strides) except +
        Matrix[T] convolute_full(const Matrix[T]& kernel) except +
        Matrix[T] convolute_full(const Matrix[T]& kernel, Strides strides) except +
        Matrix[T] rotate_180() except +


cdef extern from "convt/seed_layers.hpp" namespace "convt" nogil:
    cdef cppclass Gradients[T]:
        Gradients()
        Matrix[T] dx
        Matrix[T] dw

    Matrix[T] cnn_forward[T](const Matrix[T]& weight, const Matrix[T]& prev) except +
    Matrix[T] cnn_forward[T](const Matrix[T]& weight, const Matrix[T]& prev,
                             Strides strides) except +
    Gradients[T] cnn_backward[T](const Matrix[T]& a_prev, const Matrix[T]& dz,
                                 const Matrix[T]& kernel) except +
    Gradients[T] cnn_backward[T](const Matrix[T]& a_prev, const Matrix[T]& dz,
                                 const Matrix[T]& kernel, Strides strides) except +
    Matrix[T] fcn_forward[T](const Matrix[T]& weight, const Matrix[T]& prev) except +
    Matrix[T] fcn_forward[T](const Matrix[T]& weight, const Matrix[T]& prev,
                             Strides strides) except +
    Gradients[T] fcn_backward[T](const Matrix[T]& a_prev, const Matrix[T]& dz,
                                 const Matrix[T]& kernel) except +
    Gradients[T] fcn_backward[T](const Matrix[T]& a_prev, const Matrix[T]& dz,
                                 const Matrix[T]& kernel, Strides strides) except +


cdef extern from "convt/threading.hpp" namespace "convt" nogil:
    # Threads the kernels called from this extension use (its own setting: convt._core keeps
    # another); 1 when the extension is compiled without OpenMP.
    int get_num_threads()
    void set_num_threads(int threads) except +
