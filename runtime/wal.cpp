#include "runtime/wal.hpp"

#include <algorithm>

#include "runtime/crc32c.hpp"

namespace cafraft::wal {

namespace {

void put32(std::string& out, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
}

uint32_t get32(std::string_view in) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x |= uint32_t{static_cast<unsigned char>(in[static_cast<size_t>(i)])} << (8 * i);
  return x;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

} // namespace

void append_frame(std::string& out, std::string_view payload) {
  auto start = out.size();
  out.reserve(start + header_size + payload.size());
  put32(out, static_cast<uint32_t>(payload.size()));
  put32(out, crc32c(std::string_view{out.data() + start, 4}));
  put32(out, crc32c(payload));
  out.append(payload);
}

std::string frame(std::string_view payload) {
  std::string out;
  append_frame(out, payload);
  return out;
}

scan_result scan(std::string_view file, zeros after) {
  scan_result r;
  size_t pos = 0;
  auto stop = [&](tail t, std::string why) {
    r.valid_bytes = pos;
    r.end = t;
    r.problem = std::move(why);
    return r;
  };
  // In reserved space the data ends at the last byte that is not zero. A write that a crash
  // tore there leaves zeros after the tear, in place of the file that ends in the other case.
  size_t data_end = file.size();
  if (after == zeros::reserved) {
    auto nz = file.find_last_not_of('\0');
    data_end = nz == std::string_view::npos ? 0 : nz + 1;
  }
  while (pos < data_end) {
    auto rest = file.substr(pos);
    size_t live = data_end - pos; // bytes from here to the end of the data
    if (rest.size() < header_size)
      return stop(tail::torn, "a record header cut short");
    auto len = get32(rest);
    if (crc32c(rest.substr(0, 4)) != get32(rest.substr(4))) {
      if (all_zero(rest)) // the file grew but the data never reached the disk
        return stop(tail::torn, "zeros where a record should start");
      if (after == zeros::reserved && live < 8) // the tear is in the length or its checksum
        return stop(tail::torn, "a record header cut short");
      return stop(tail::corrupt, "record header checksum mismatch");
    }
    if (len > max_payload)
      return stop(tail::corrupt, "record length " + std::to_string(len) + " out of range");
    if (rest.size() < header_size + len)
      return stop(tail::torn, "a record cut short");
    auto payload = rest.substr(header_size, len);
    if (crc32c(payload) != get32(rest.substr(8))) {
      // The last record of the file with zeros at its end: the tail of a write that did not
      // reach the disk. Anything else is damage to data that was written whole.
      if (after == zeros::reserved) {
        if (live < header_size + len) // nothing after it, and it ends in zeros
          return stop(tail::torn, "a record whose end is zeros");
        return stop(tail::corrupt, "record checksum mismatch");
      }
      bool last = rest.size() == header_size + len;
      if (last && len > 0 && payload.back() == 0) {
        auto nz = payload.find_last_not_of('\0');
        if (nz == std::string_view::npos || len - nz > 8)
          return stop(tail::torn, "a record whose end is zeros");
      }
      return stop(tail::corrupt, "record checksum mismatch");
    }
    r.payloads.push_back(payload);
    pos += header_size + len;
  }
  r.valid_bytes = pos;
  return r;
}

} // namespace cafraft::wal
