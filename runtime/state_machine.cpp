#include <cafraft/runtime/state_machine.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/crc32c.hpp>

namespace cafraft {

snapshot_sink::~snapshot_sink() = default;
snapshot_source::~snapshot_source() = default;
snapshot_writer::~snapshot_writer() = default;
state_machine::~state_machine() = default;

bool snapshot_source::read_exact(char* buf, size_t n) {
  while (n > 0) {
    auto got = read(buf, n);
    if (got == 0)
      return false;
    buf += got;
    n -= got;
  }
  return true;
}

namespace {

constexpr size_t piece_bytes = 1 << 20;

class string_writer : public snapshot_writer {
public:
  explicit string_writer(std::string bytes) : bytes_(std::move(bytes)) {}
  bool write_next(snapshot_sink& out) override {
    if (pos_ >= bytes_.size())
      return false;
    auto n = std::min(piece_bytes, bytes_.size() - pos_);
    out.write(std::string_view{bytes_}.substr(pos_, n));
    pos_ += n;
    return true;
  }

private:
  std::string bytes_;
  size_t pos_ = 0;
};

class memory_source : public snapshot_source {
public:
  explicit memory_source(std::string bytes) : bytes_(std::move(bytes)) {}
  size_t read(char* buf, size_t n) override {
    n = std::min(n, bytes_.size() - pos_);
    std::memcpy(buf, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return bytes_.size(); }

private:
  std::string bytes_;
  size_t pos_ = 0;
};

class string_sink : public snapshot_sink {
public:
  void write(std::string_view bytes) override { out.append(bytes); }
  std::string out;
};

size_t shard_of(const std::string& key) {
  return crc32c(key) % kv_store::shard_count;
}

// A KV snapshot is the sequence of puts that rebuilds the map: each a 4-byte length in host
// byte order, then an encoded pb::KvCommand.
class kv_writer : public snapshot_writer {
public:
  explicit kv_writer(std::array<std::shared_ptr<const kv_store::shard>, kv_store::shard_count> s)
      : shards_(std::move(s)) {}

  bool write_next(snapshot_sink& out) override {
    while (next_ < shards_.size() && (!shards_[next_] || shards_[next_]->empty()))
      release(next_++);
    if (next_ == shards_.size())
      return false;
    auto& shard = *shards_[next_];
    if (!started_) {
      pos_ = shard.begin();
      started_ = true;
    }
    std::string piece;
    pb::KvCommand put;
    for (; pos_ != shard.end() && piece.size() < piece_bytes; ++pos_) {
      put.mutable_put()->set_key(pos_->first);
      put.mutable_put()->set_value(pos_->second);
      auto n = static_cast<uint32_t>(put.ByteSizeLong());
      piece.append(reinterpret_cast<const char*>(&n), sizeof(n));
      put.AppendToString(&piece);
    }
    out.write(piece);
    if (pos_ == shard.end()) {
      started_ = false;
      release(next_++);
    }
    return true;
  }

private:
  // Written: the store may change this shard in place again (no copy).
  void release(size_t i) { shards_[i].reset(); }

  std::array<std::shared_ptr<const kv_store::shard>, kv_store::shard_count> shards_;
  size_t next_ = 0;
  bool started_ = false;
  kv_store::shard::const_iterator pos_;
};

} // namespace

std::unique_ptr<snapshot_writer> write_string(std::string bytes) {
  return std::make_unique<string_writer>(std::move(bytes));
}

std::string read_all(snapshot_source& in) {
  std::string out;
  char buf[1 << 16];
  while (auto n = in.read(buf, sizeof buf))
    out.append(buf, n);
  return out;
}

std::unique_ptr<snapshot_source> string_source(std::string bytes) {
  return std::make_unique<memory_source>(std::move(bytes));
}

std::string snapshot_to_string(state_machine& sm) {
  auto w = sm.prepare_snapshot();
  string_sink sink;
  while (w->write_next(sink)) {
  }
  return std::move(sink.out);
}

bool restore_from_string(state_machine& sm, std::string bytes) {
  memory_source in{std::move(bytes)};
  return sm.restore(in);
}

// -- kv_store ---------------------------------------------------------------------------------

kv_store::kv_store() {
  for (auto& s : shards_)
    s = std::make_shared<shard>();
}

kv_store::shard& kv_store::writable(const std::string& key) {
  auto& s = shards_[shard_of(key)];
  if (s.use_count() > 1 && !CAFRAFT_CANARY("kv_snapshot_shares_written_shard"))
    s = std::make_shared<shard>(*s); // a snapshot writer still reads this one
  // The writer's reads of the shard happen before it dropped its reference (a release); this
  // fence orders them before our writes to it.
  std::atomic_thread_fence(std::memory_order_acquire);
  return *s;
}

const kv_store::shard& kv_store::readable(const std::string& key) const {
  return *shards_[shard_of(key)];
}

std::string kv_store::apply(uint64_t, const std::string& command) {
  pb::KvCommand cmd;
  pb::KvResult res;
  if (!cmd.ParseFromString(command))
    return res.SerializeAsString(); // proposals are validated before they enter the log
  const std::string& key = cmd.has_put()   ? cmd.put().key()
                           : cmd.has_cas() ? cmd.cas().key()
                                           : cmd.del().key();
  {
    auto& r = readable(key);
    auto i = r.find(key);
    if (i != r.end()) {
      res.set_existed(true);
      res.set_previous(i->second);
    }
    if (cmd.has_cas()) {
      auto& c = cmd.cas();
      bool holds = c.expect_absent() ? i == r.end() : i != r.end() && i->second == c.expected();
      if (!holds) {
        res.set_compare_failed(true);
        return res.SerializeAsString();
      }
    } else if (cmd.has_del() && i == r.end()) {
      return res.SerializeAsString();
    } else if (!cmd.has_put() && !cmd.has_del()) {
      return res.SerializeAsString();
    }
  }
  auto& data = writable(key);
  if (cmd.has_cas())
    data[key] = cmd.cas().value();
  else if (cmd.has_put())
    data[key] = cmd.put().value();
  else
    data.erase(key);
  return res.SerializeAsString();
}

std::string kv_store::query(const std::string& query) const {
  pb::KvQuery q;
  pb::GetResponse resp;
  if (q.ParseFromString(query)) {
    auto& r = readable(q.key());
    auto i = r.find(q.key());
    if (i != r.end()) {
      resp.set_found(true);
      resp.set_value(i->second);
    }
  }
  return resp.SerializeAsString();
}

std::unique_ptr<snapshot_writer> kv_store::prepare_snapshot() {
  std::array<std::shared_ptr<const shard>, shard_count> view;
  for (size_t i = 0; i < shard_count; ++i)
    view[i] = shards_[i];
  return std::make_unique<kv_writer>(std::move(view));
}

bool kv_store::restore(snapshot_source& in) {
  std::array<std::shared_ptr<shard>, shard_count> fresh;
  for (auto& s : fresh)
    s = std::make_shared<shard>();
  std::string record;
  pb::KvCommand put;
  for (;;) {
    uint32_t n = 0;
    auto got = in.read(reinterpret_cast<char*>(&n), sizeof(n));
    if (got == 0)
      break;
    if (got < sizeof(n) && !in.read_exact(reinterpret_cast<char*>(&n) + got, sizeof(n) - got))
      return false;
    if (n > in.size())
      return false;
    record.resize(n);
    if (!in.read_exact(record.data(), n) || !put.ParseFromString(record) || !put.has_put())
      return false;
    auto& key = *put.mutable_put()->mutable_key();
    (*fresh[shard_of(key)])[key] = std::move(*put.mutable_put()->mutable_value());
  }
  shards_ = std::move(fresh);
  return true;
}

std::map<std::string, std::string> kv_store::data() const {
  std::map<std::string, std::string> out;
  for (auto& s : shards_)
    out.insert(s->begin(), s->end());
  return out;
}

size_t kv_store::size() const {
  size_t n = 0;
  for (auto& s : shards_)
    n += s->size();
  return n;
}

} // namespace cafraft
