// stack/base/byteorder.h — big-endian loads/stores from unaligned bytes (memcpy, never a cast).
// Kernel counterparts: get_unaligned_be16/32(), put_unaligned_be16/32(), cpu_to_be16(), be16_to_cpu().
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace xmit {

// Values kept as they sit on the wire (network byte order), as the kernel's sparse types.
using be16 = uint16_t;  // kernel: __be16
using be32 = uint32_t;  // kernel: __be32

constexpr uint16_t bswap16(uint16_t v) { return __builtin_bswap16(v); }
constexpr uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }
constexpr uint64_t bswap64(uint64_t v) { return __builtin_bswap64(v); }

constexpr be16 cpu_to_be16(uint16_t v) {
  return std::endian::native == std::endian::little ? bswap16(v) : v;
}
constexpr be32 cpu_to_be32(uint32_t v) {
  return std::endian::native == std::endian::little ? bswap32(v) : v;
}
constexpr uint16_t be16_to_cpu(be16 v) { return cpu_to_be16(v); }
constexpr uint32_t be32_to_cpu(be32 v) { return cpu_to_be32(v); }

// kernel: get_unaligned_be16(), include/linux/unaligned.h
inline uint16_t load_be16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return be16_to_cpu(v);
}
inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return be32_to_cpu(v);
}
inline uint64_t load_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return std::endian::native == std::endian::little ? bswap64(v) : v;
}

// kernel: put_unaligned_be16(), include/linux/unaligned.h
inline void store_be16(uint8_t* p, uint16_t v) {
  v = cpu_to_be16(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  v = cpu_to_be32(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  if (std::endian::native == std::endian::little) v = bswap64(v);
  std::memcpy(p, &v, sizeof v);
}

// Raw (no byte swap) unaligned access, for fields kept in network order (addresses, checksums).
inline uint16_t load_raw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint32_t load_raw32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_raw16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }
inline void store_raw32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }

}  // namespace xmit
