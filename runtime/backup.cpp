#include <cafraft/runtime/backup.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft::backup {

namespace {

constexpr std::string_view magic{"cafraft-backup\n\0", 16};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

void write_all(int fd, const std::string& path, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail(path, std::string{"cannot write: "} + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
}

/// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
std::string read_at(int fd, const std::string& path, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    auto n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail(path, std::string{"cannot read: "} + std::strerror(errno));
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

} // namespace

writer::writer(std::string path, const pb::BackupHeader& header)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), header_(header) {
  header_.set_format(format);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    fail(tmp_, std::string{"cannot create: "} + std::strerror(errno));
  write_all(fd_, tmp_, magic);
  write_all(fd_, tmp_, wal::frame(header_.SerializeAsString()));
}

writer::~writer() {
  if (fd_ >= 0) { // not finished: no half backup stays behind
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void writer::append(std::string_view data) {
  write_all(fd_, tmp_, data);
  written_ += data.size();
  crc_ = crc32c(data, crc_);
}

void writer::finish() {
  auto& m = header_.meta();
  if (written_ != m.size() || !checksum_ok(crc_, m.crc32c()))
    fail(tmp_, "the data received (" + std::to_string(written_) +
                   " bytes) does not match the snapshot's size (" + std::to_string(m.size()) +
                   ") and checksum");
  if (::fsync(fd_) != 0)
    fail(tmp_, std::string{"cannot sync: "} + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(path_, std::string{"cannot rename into place: "} + std::strerror(errno));
}

reader::reader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0)
    fail(path_, std::string{"cannot open: "} + std::strerror(errno));
  auto head = read_at(fd_, path_, 0, magic.size() + wal::header_size);
  if (head.size() < magic.size() || std::string_view{head}.substr(0, magic.size()) != magic)
    fail(path_, "not a cafraft backup (it does not begin with \"cafraft-backup\")");
  if (head.size() < magic.size() + 4)
    fail(path_, "cut short in its header");
  uint32_t len = 0;
  for (int i = 3; i >= 0; --i)
    len = (len << 8) | static_cast<uint8_t>(head[magic.size() + static_cast<size_t>(i)]);
  if (len > (1u << 20))
    fail(path_, "a damaged header (it claims " + std::to_string(len) + " bytes)");
  auto framed = read_at(fd_, path_, magic.size(), wal::header_size + len);
  if (framed.size() < wal::header_size + len)
    fail(path_, "cut short in its header");
  auto r = wal::scan(framed);
  if (r.payloads.size() != 1 || r.end != wal::tail::clean ||
      !header_.ParseFromArray(r.payloads[0].data(), static_cast<int>(r.payloads[0].size())))
    fail(path_, "a damaged header (its checksum does not match)");
  if (header_.format() > format)
    fail(path_, "written by cafraft backup format " + std::to_string(header_.format()) +
                    ", this binary reads up to " + std::to_string(format));
  if (header_.format() == 0 || !header_.has_meta() || header_.meta().index() == 0)
    fail(path_, "a header without a snapshot");
  data_offset_ = magic.size() + framed.size();
  uint64_t size = 0;
  uint32_t crc = 0;
  read_data([&](std::string_view chunk) {
    size += chunk.size();
    crc = crc32c(chunk, crc);
  });
  auto& m = header_.meta();
  if (size != m.size())
    fail(path_, "cut short or too long: " + std::to_string(size) + " bytes of data where the " +
                    "header says " + std::to_string(m.size()));
  if (!checksum_ok(crc, m.crc32c()))
    fail(path_, "damaged: the data's CRC32C does not match the header's");
}

reader::~reader() {
  if (fd_ >= 0)
    ::close(fd_);
}

void reader::read_data(const std::function<void(std::string_view)>& f, size_t chunk) const {
  for (uint64_t at = data_offset_;;) {
    auto piece = read_at(fd_, path_, at, chunk);
    if (piece.empty())
      return;
    at += piece.size();
    f(piece);
  }
}

std::string new_cluster_id() {
  std::random_device rd;
  char out[17];
  std::snprintf(out, sizeof out, "%08x%08x", rd(), rd());
  return out;
}

pb::SnapshotMeta restore(const std::string& file, durable_options opts, const member& self) {
  reader in{file}; // checked whole before anything is touched
  std::error_code ec;
  if (std::filesystem::exists(opts.dir, ec) && !std::filesystem::is_empty(opts.dir, ec))
    throw std::runtime_error(opts.dir + " is not empty: a restore makes a new data directory, "
                                        "and never writes over one");
  bool made = !std::filesystem::exists(opts.dir, ec);
  if (opts.cluster_id.empty())
    opts.cluster_id = new_cluster_id();
  auto meta = in.header().meta();
  meta.clear_members(); // the first member of a new cluster
  auto* m = meta.add_members();
  m->set_id(self.id);
  m->set_address(self.address);
  try {
    durable_storage store{opts};
    store.load();
    pb::InstallSnapshot chunk;
    *chunk.mutable_meta() = meta;
    bool complete = false;
    uint64_t offset = 0;
    in.read_data([&](std::string_view data) {
      chunk.set_offset(offset);
      chunk.set_data(std::string{data});
      offset = store.receive_chunk(chunk, complete);
    });
    if (!complete) { // an empty state: one empty chunk
      chunk.set_offset(0);
      chunk.clear_data();
      store.receive_chunk(chunk, complete);
    }
    if (!complete)
      throw std::runtime_error(file + ": the data did not make a whole snapshot");
    persist_batch b;
    b.hard_state.emplace();
    b.hard_state->set_term(meta.term());
    b.snapshot = meta;
    b.reset_log = true;
    std::vector<persist_batch> batches;
    batches.push_back(std::move(b));
    store.write(std::move(batches));
  } catch (...) {
    // Nothing stays behind: the directory is removed if the restore made it, emptied if not.
    if (made)
      std::filesystem::remove_all(opts.dir, ec);
    else
      for (auto& e : std::filesystem::directory_iterator(opts.dir, ec))
        std::filesystem::remove_all(e.path(), ec);
    throw;
  }
  return meta;
}

std::string describe(const pb::BackupHeader& h) {
  auto& m = h.meta();
  std::string members;
  for (auto& x : m.members())
    members += (members.empty() ? "" : ", ") + x.id() + "@" + x.address();
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", m.crc32c());
  return "format:      " + std::to_string(h.format()) + "\ncluster:     " + h.cluster_id() +
         "\ntaken from:  " + h.node_id() + "\ncreated:     " + std::to_string(h.created_unix_ms()) +
         " (unix ms)\nindex:       " + std::to_string(m.index()) +
         "\nterm:        " + std::to_string(m.term()) + "\nmembers:     " + members +
         "\ndata:        " + std::to_string(m.size()) + " bytes, crc32c " + crc + "\n";
}

} // namespace cafraft::backup
