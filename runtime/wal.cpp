#include <cafraft/runtime/wal.hpp>

#include <algorithm>

#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/crc32c.hpp>

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

reader::reader(fetch_fn fetch, zeros after, size_t chunk)
    : fetch_(std::move(fetch)), after_(after), chunk_(std::max(chunk, header_size)) {}

reader::reader(std::string_view file, zeros after)
    : after_(after), chunk_(file.size()), win_(file), eof_(true), size_(file.size()) {}

size_t reader::at_hand(size_t n) {
  uint64_t have = win_at_ + win_.size() - pos_;
  if (have >= n || eof_)
    return static_cast<size_t>(std::min<uint64_t>(have, n));
  buf_.erase(0, static_cast<size_t>(pos_ - win_at_)); // what is before the record is done
  win_at_ = pos_;
  while (buf_.size() < n && !eof_) {
    auto want = std::max(chunk_, n - buf_.size());
    auto more = fetch_(win_at_ + buf_.size(), want);
    eof_ = more.size() < want;
    buf_ += more;
  }
  if (eof_)
    size_ = win_at_ + buf_.size();
  win_ = buf_;
  return std::min(buf_.size(), n);
}

bool reader::zeros_from(uint64_t at) {
  if (at >= zero_from_)
    return true;
  auto win_end = win_at_ + win_.size();
  if (at < win_end &&
      win_.find_first_not_of('\0', static_cast<size_t>(at - win_at_)) != std::string_view::npos)
    return false;
  // Past the window (reserved space is megabytes of zeros): read on, keeping nothing.
  for (auto off = std::max(at, win_end); !eof_;) {
    auto more = fetch_(off, chunk_);
    if (more.find_first_not_of('\0') != std::string::npos)
      return false;
    off += more.size();
    if (more.size() < chunk_) {
      size_ = off;
      break;
    }
  }
  zero_from_ = at;
  return true;
}

uint64_t reader::file_size() {
  for (auto off = win_at_ + win_.size(); size_ == UINT64_MAX;) {
    auto more = fetch_(off, chunk_);
    off += more.size();
    if (more.size() < chunk_)
      size_ = off;
  }
  return size_;
}

std::nullopt_t reader::stop(tail t, std::string why) {
  done_ = true;
  end_ = t;
  problem_ = std::move(why);
  return std::nullopt;
}

std::optional<std::string_view> reader::next() {
  if (done_)
    return std::nullopt;
  auto have = at_hand(header_size);
  // In reserved space the data ends at the last byte that is not zero. A write that a crash
  // tore there leaves zeros after the tear, in place of the file that ends in the other case.
  bool more = after_ == zeros::reserved ? !zeros_from(pos_) : have > 0;
  if (!more)
    return stop(tail::clean, {});
  if (have < header_size)
    return stop(tail::torn, "a record header cut short");
  auto head = win_.substr(static_cast<size_t>(pos_ - win_at_), header_size);
  auto len = get32(head);
  auto sum = get32(head.substr(8));
  if (!checksum_ok(crc32c(head.substr(0, 4)), get32(head.substr(4)))) {
    if (zeros_from(pos_)) // the file grew but the data never reached the disk
      return stop(tail::torn, "zeros where a record should start");
    if (after_ == zeros::reserved && zeros_from(pos_ + 7)) // torn in the length or its checksum
      return stop(tail::torn, "a record header cut short");
    return stop(tail::corrupt, "record header checksum mismatch");
  }
  if (len > max_payload)
    return stop(tail::corrupt, "record length " + std::to_string(len) + " out of range");
  size_t whole = header_size + len;
  if (at_hand(whole) < whole)
    return stop(tail::torn, "a record cut short");
  auto payload = [&] {
    return win_.substr(static_cast<size_t>(pos_ - win_at_) + header_size, len);
  };
  if (!checksum_ok(crc32c(payload()), sum) && !CAFRAFT_CANARY("wal_skips_payload_checksum")) {
    // The last record of the file with zeros at its end: the tail of a write that did not
    // reach the disk. Anything else is damage to data that was written whole.
    if (after_ == zeros::reserved) {
      if (zeros_from(pos_ + whole - 1)) // nothing after it, and it ends in zeros
        return stop(tail::torn, "a record whose end is zeros");
      return stop(tail::corrupt, "record checksum mismatch");
    }
    bool last = at_hand(whole + 1) == whole;
    auto p = payload();
    if (last && len > 0 && p.back() == 0) {
      auto nz = p.find_last_not_of('\0');
      if (nz == std::string_view::npos || len - nz > 8)
        return stop(tail::torn, "a record whose end is zeros");
    }
    return stop(tail::corrupt, "record checksum mismatch");
  }
  auto out = payload();
  offset_ = pos_;
  pos_ += whole;
  return out;
}

scan_result scan(std::string_view file, zeros after) {
  reader r{file, after};
  scan_result out;
  while (auto payload = r.next())
    out.payloads.push_back(*payload);
  out.valid_bytes = r.valid_bytes();
  out.end = r.end();
  out.problem = r.problem();
  return out;
}

} // namespace cafraft::wal
