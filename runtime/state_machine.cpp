#include <cafraft/runtime/state_machine.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>

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

void append_put(std::string& out, pb::KvCommand& put, const std::string& key,
                const std::string& value) {
  put.mutable_put()->set_key(key);
  put.mutable_put()->set_value(value);
  auto n = static_cast<uint32_t>(put.ByteSizeLong());
  out.append(reinterpret_cast<const char*>(&n), sizeof(n));
  put.AppendToString(&out);
}

} // namespace

struct kv_store::shard {
  std::map<std::string, std::string> data;
  // Between prepare_snapshot() and the writer's visit of this shard (`pending`): the values
  // that changed meanwhile as they were when the snapshot was prepared (none: absent then).
  // The store's thread changes `data` and these under `mtx`; the writer reads under it.
  std::map<std::string, std::optional<std::string>> before;
  bool pending = false;
  std::mutex mtx;
};

namespace {

// A KV snapshot is the sequence of puts that rebuilds the map: each a 4-byte length in host
// byte order, then an encoded pb::KvCommand. One piece per shard, written under its lock.
class kv_writer : public snapshot_writer {
public:
  /// `visit`: the shards of `s` that existed when the snapshot was prepared (the store's thread
  /// may fill empty slots of `s` meanwhile: those shards hold only later writes, and the
  /// writer never reads a slot).
  kv_writer(std::shared_ptr<kv_store::shards> s, std::vector<kv_store::shard*> visit)
      : shards_(std::move(s)), visit_(std::move(visit)) {}

  ~kv_writer() override {
    // Abandoned half-way (the node stops): the shards not written keep no more undo records.
    for (; next_ < visit_.size(); ++next_) {
      auto& sh = *visit_[next_];
      std::lock_guard<std::mutex> guard{sh.mtx};
      sh.pending = false;
      sh.before.clear();
    }
  }

  bool write_next(snapshot_sink& out) override {
    std::string piece;
    for (; next_ < visit_.size() && piece.empty(); ++next_) {
      auto& sh = *visit_[next_];
      std::lock_guard<std::mutex> guard{sh.mtx};
      for (auto& [key, value] : sh.data) {
        auto old = sh.before.find(key);
        if (old == sh.before.end())
          append_put(piece, put_, key, value);
        else if (old->second)
          append_put(piece, put_, key, *old->second);
      }
      for (auto& [key, old] : sh.before) // deleted since, present then
        if (old && sh.data.count(key) == 0)
          append_put(piece, put_, key, *old);
      sh.pending = false;
      sh.before.clear();
    }
    if (piece.empty())
      return false;
    out.write(piece);
    return true;
  }

private:
  std::shared_ptr<kv_store::shards> shards_; // keeps the shards alive
  std::vector<kv_store::shard*> visit_;
  size_t next_ = 0;
  pb::KvCommand put_;
};

/// The table of slots, every shard still to be made.
std::shared_ptr<kv_store::shards> make_shards() {
  auto s = std::make_shared<kv_store::shards>();
  s->resize(kv_store::shard_count);
  return s;
}

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

kv_store::kv_store() : shards_(make_shards()) {}

kv_store::~kv_store() = default;

kv_store::shard* kv_store::find_shard(const std::string& key) const {
  return (*shards_)[crc32c(key) % shard_count].get();
}

kv_store::shard& kv_store::shard_for(const std::string& key) {
  auto& slot = (*shards_)[crc32c(key) % shard_count];
  if (!slot)
    slot = std::make_unique<shard>();
  return *slot;
}

std::string kv_store::apply(uint64_t, const std::string& command) {
  pb::KvCommand cmd;
  pb::KvResult res;
  if (!cmd.ParseFromString(command))
    return res.SerializeAsString(); // proposals are validated before they enter the log
  const std::string& key = cmd.has_put()   ? cmd.put().key()
                           : cmd.has_cas() ? cmd.cas().key()
                                           : cmd.del().key();
  // Only this thread changes `data` and the slots: a read needs no lock.
  auto* found = find_shard(key);
  const std::string* current = nullptr;
  if (found) {
    auto i = found->data.find(key);
    if (i != found->data.end())
      current = &i->second;
  }
  if (current) {
    res.set_existed(true);
    res.set_previous(*current);
  }
  if (cmd.has_cas()) {
    auto& c = cmd.cas();
    bool holds = c.expect_absent() ? current == nullptr : current && *current == c.expected();
    if (!holds) {
      res.set_compare_failed(true);
      return res.SerializeAsString();
    }
  } else if (!cmd.has_put() && (!cmd.has_del() || current == nullptr)) {
    return res.SerializeAsString(); // nothing changes
  }
  auto& sh = found ? *found : shard_for(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (sh.pending && sh.before.count(key) == 0 && !CAFRAFT_CANARY("kv_snapshot_sees_later_writes"))
    sh.before.emplace(key, current ? std::optional<std::string>{*current} : std::nullopt);
  if (cmd.has_cas())
    sh.data[key] = cmd.cas().value();
  else if (cmd.has_put())
    sh.data[key] = cmd.put().value();
  else
    sh.data.erase(key);
  return res.SerializeAsString();
}

namespace {

/// The keys of `shards` in [from, end), in order (end empty: no end), at most `limit` (0: no
/// limit): a merge of the shards' ordered maps.
void range_read(const kv_store::shards& shards, const std::string& from, const std::string& end,
                uint32_t limit, pb::GetResponse& out) {
  using iter = std::map<std::string, std::string>::const_iterator;
  auto later = [](const std::pair<iter, iter>& a, const std::pair<iter, iter>& b) {
    return a.first->first > b.first->first;
  };
  std::vector<std::pair<iter, iter>> heap; // (next, end of its shard), smallest key on top
  for (auto& sh : shards) {
    if (!sh)
      continue;
    auto i = sh->data.lower_bound(from);
    if (i != sh->data.end() && (end.empty() || i->first < end))
      heap.emplace_back(i, sh->data.end());
  }
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    auto& [i, stop] = heap.back();
    if (limit > 0 && static_cast<uint32_t>(out.kvs_size()) == limit) {
      out.set_more(true);
      return;
    }
    auto* kv = out.add_kvs();
    kv->set_key(i->first);
    kv->set_value(i->second);
    if (++i == stop || (!end.empty() && i->first >= end)) {
      heap.pop_back();
    } else {
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
}

} // namespace

std::string kv_store::query(const std::string& query) const {
  pb::KvQuery q;
  pb::GetResponse resp;
  bool parsed = q.ParseFromString(query);
  if (parsed && !q.range_end().empty()) {
    // "\0" alone: every key from `key` on (etcd's convention).
    range_read(*shards_, q.key(), q.range_end() == std::string(1, '\0') ? "" : q.range_end(),
               q.limit(), resp);
    resp.set_found(resp.kvs_size() > 0);
  } else if (parsed) {
    if (auto* sh = find_shard(q.key())) {
      auto i = sh->data.find(q.key());
      if (i != sh->data.end()) {
        resp.set_found(true);
        resp.set_value(i->second);
      }
    }
  }
  return resp.SerializeAsString();
}

std::unique_ptr<snapshot_writer> kv_store::prepare_snapshot() {
  std::vector<shard*> visit;
  for (auto& sh : *shards_) {
    if (!sh)
      continue;
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->pending = true;
    sh->before.clear();
    visit.push_back(sh.get());
  }
  return std::make_unique<kv_writer>(shards_, std::move(visit));
}

bool kv_store::restore(snapshot_source& in) {
  auto fresh = make_shards();
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
    auto& slot = (*fresh)[crc32c(key) % shard_count];
    if (!slot)
      slot = std::make_unique<shard>();
    slot->data[key] = std::move(*put.mutable_put()->mutable_value());
  }
  // A writer of an earlier snapshot still under way keeps the shards it writes.
  shards_ = std::move(fresh);
  return true;
}

std::map<std::string, std::string> kv_store::data() const {
  std::map<std::string, std::string> out;
  for (auto& sh : *shards_)
    if (sh)
      out.insert(sh->data.begin(), sh->data.end());
  return out;
}

size_t kv_store::size() const {
  size_t n = 0;
  for (auto& sh : *shards_)
    if (sh)
      n += sh->data.size();
  return n;
}

} // namespace cafraft
