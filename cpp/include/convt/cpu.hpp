#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#if defined(__has_include)
#if __has_include(<unistd.h>)
#include <unistd.h>
#define CONVT_HAVE_SYSCONF 1
#endif
#endif

#include "error.hpp"

// The data caches of the CPU the process runs on, read at run time: the GEMM derives its cache
// blocking from them (gemm.hpp), so that one build is blocked right for every CPU it runs on.

namespace convt {

// Sizes in bytes: the L1 data cache and the L2 of one core, and the L3 (0 when there is none);
// the L2's associativity (0 when unknown). `source` says where they came from: "sysfs",
// "sysconf", "fallback", and "+ CONVT_CACHE_SIZES" when the environment overrides some of them.
struct CacheSizes {
  std::int64_t l1d = 0;
  std::int64_t l2 = 0;
  std::int64_t l3 = 0;
  int l2_ways = 0;
  std::string source;
};

namespace detail {

// Sizes as sysfs and people write them: "48K", "1024K", "32M", "32MiB", "1048576" (bytes).
// Returns -1 for anything else.
inline std::int64_t parse_cache_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) return -1;
  const std::int64_t number = std::stoll(text.substr(0, digits));
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit == "" || unit == "B") return number;
  if (unit == "K" || unit == "KB" || unit == "KIB") return number << 10;
  if (unit == "M" || unit == "MB" || unit == "MIB") return number << 20;
  if (unit == "G" || unit == "GB" || unit == "GIB") return number << 30;
  return -1;
}

inline std::string first_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (file) std::getline(file, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// Linux describes each cache of a CPU in <cpu>/cache/index<i>/{level,type,size}; `cpu` is the
// directory of the CPU (/sys/devices/system/cpu/cpu0), a parameter so that tests can describe
// other machines. Sizes it does not find stay 0.
inline CacheSizes caches_from_sysfs(const std::string& cpu) {
  CacheSizes caches;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = cpu + "/cache/index" + std::to_string(index) + "/";
    const std::string level = first_line(dir + "level");
    if (level.empty()) break;
    const std::string type = first_line(dir + "type");
    const std::int64_t size = parse_cache_size(first_line(dir + "size"));
    if (size <= 0 || type == "Instruction") continue;
    if (level == "1" && type == "Data") caches.l1d = size;
    if (level == "2") {
      caches.l2 = size;
      caches.l2_ways =
          std::max<int>(0, std::atoi(first_line(dir + "ways_of_associativity").c_str()));
    }
    if (level == "3") caches.l3 = size;
  }
  caches.source = "sysfs";
  return caches;
}

inline CacheSizes caches_from_sysconf() {
  CacheSizes caches;
#if defined(CONVT_HAVE_SYSCONF) && defined(_SC_LEVEL1_DCACHE_SIZE) && \
    defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
  caches.l1d = std::max<long>(0, sysconf(_SC_LEVEL1_DCACHE_SIZE));
  caches.l2 = std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));
  caches.l3 = std::max<long>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
#if defined(_SC_LEVEL2_CACHE_ASSOC)
  caches.l2_ways = static_cast<int>(std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_ASSOC)));
#endif
#endif
  caches.source = "sysconf";
  return caches;
}

// When the system says nothing: the smallest caches of the CPUs convt is built for (32 KiB of
// L1 data and 512 KiB of L2 per core are common to x86 cores since 2017 and to Arm server cores;
// larger caches only make these blocks a little less than the best).
inline CacheSizes fallback_caches() { return {32 << 10, 512 << 10, 8 << 20, 8, "fallback"}; }

// Calls set(key, value) for each item of "key=value,key=value"; false when an item has no '='
// or `set` rejects it.
template <class Set>
bool for_each_setting(const std::string& text, Set&& set) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const std::size_t equals = item.find('=');
    if (equals == std::string::npos || !set(item.substr(0, equals), item.substr(equals + 1))) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

// `text` is CONVT_CACHE_SIZES: comma-separated l1d=SIZE, l2=SIZE, l3=SIZE and l2_ways=N, each
// optional, e.g. "l1d=32K,l2=512K,l2_ways=8" to block as for a Zen 3 core.
inline CacheSizes override_caches(CacheSizes caches, const std::string& text) {
  const bool valid = for_each_setting(text, [&](const std::string& key, const std::string& value) {
    if (key == "l2_ways") {
      const std::int64_t ways = parse_cache_size(value);
      if (value.find_first_not_of("0123456789") != std::string::npos || ways < 1 || ways > 64) {
        return false;
      }
      caches.l2_ways = static_cast<int>(ways);
      return true;
    }
    std::int64_t* target = key == "l1d"  ? &caches.l1d
                           : key == "l2" ? &caches.l2
                           : key == "l3" ? &caches.l3
                                         : nullptr;
    const std::int64_t size = parse_cache_size(value);
    if (target == nullptr || size < 0 || (size == 0 && key != "l3")) return false;
    *target = size;
    return true;
  });
  if (!valid) {
    fail("CONVT_CACHE_SIZES must be comma-separated l1d=SIZE, l2=SIZE, l3=SIZE or l2_ways=N, ",
         "with sizes such as 32K or 1M, got '", text, "'");
  }
  caches.source += " + CONVT_CACHE_SIZES";
  return caches;
}

inline CacheSizes detect_caches() {
  CacheSizes caches = caches_from_sysfs("/sys/devices/system/cpu/cpu0");
  if (caches.l1d <= 0 || caches.l2 <= 0) caches = caches_from_sysconf();
  if (caches.l1d <= 0 || caches.l2 <= 0) caches = fallback_caches();
  if (caches.l3 < 0) caches.l3 = 0;
  const char* forced = std::getenv("CONVT_CACHE_SIZES");
  if (forced != nullptr && *forced != '\0') caches = override_caches(caches, forced);
  return caches;
}

}  // namespace detail

// The caches of this CPU, read once per process (CONVT_CACHE_SIZES overrides what is read).
inline const CacheSizes& cache_sizes() {
  static const CacheSizes caches = detail::detect_caches();
  return caches;
}

}  // namespace convt
