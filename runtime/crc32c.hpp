// CRC32C (Castagnoli), the checksum of every WAL record and snapshot chunk. Debian 12 has no
// C++ package for it (apt-cache search crc32c finds only Python, Go, Perl and Node ones), so
// this is the usual table-driven version, checked against the RFC 3720 test vectors.
#pragma once

#include <cstdint>
#include <string_view>

namespace cafraft {

/// Extends `crc` (0 to start) over `data`.
/// CRC-32C (Castagnoli) of `data`, continuing from `crc`. Uses SSE4.2's crc32 instruction when
/// the CPU has it.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

/// The same with lookup tables only (tests compare the two).
uint32_t crc32c_portable(std::string_view data, uint32_t crc = 0);

/// Whether a stored checksum matches the one computed. Fuzz builds (tests/fuzz, never for real
/// data) take any stored value but zero, so that the fuzzer gets past the checksums to the
/// parsing behind them; zeros, what a crash leaves, still fail as they do in production.
inline bool checksum_ok(uint32_t computed, uint32_t stored) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  if (stored != 0)
    return true;
#endif
  return computed == stored;
}

} // namespace cafraft
