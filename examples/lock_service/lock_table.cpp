#include "lock_table.hpp"

#include "lock.pb.h"

namespace lockservice {

namespace {

// Writes the header and then the records of a copy of the table, 64 KiB at a time.
class table_writer : public cafraft::snapshot_writer {
public:
  table_writer(std::map<std::string, lock_table::held> locks, uint64_t applied)
      : locks_(std::move(locks)), next_(locks_.begin()) {
    SnapshotHeader h;
    h.set_applied_index(applied);
    h.set_locks(locks_.size());
    append(h);
  }

  bool write_next(cafraft::snapshot_sink& out) override {
    for (; next_ != locks_.end() && piece_.size() < (64 << 10); ++next_) {
      Record r;
      r.set_lock(next_->first);
      r.set_owner(next_->second.owner);
      r.set_token(next_->second.token);
      append(r);
    }
    if (piece_.empty())
      return false;
    out.write(piece_);
    piece_.clear();
    return true;
  }

private:
  void append(const google::protobuf::Message& m) {
    auto n = static_cast<uint32_t>(m.ByteSizeLong());
    for (int shift = 24; shift >= 0; shift -= 8) // big-endian length
      piece_.push_back(static_cast<char>((n >> shift) & 0xff));
    m.AppendToString(&piece_);
  }

  std::map<std::string, lock_table::held> locks_;
  std::map<std::string, lock_table::held>::const_iterator next_;
  std::string piece_;
};

// Reads one length-prefixed message; false at the end or on damage.
bool read_one(cafraft::snapshot_source& in, google::protobuf::Message& m, bool& end) {
  unsigned char len[4];
  end = false;
  auto got = in.read(reinterpret_cast<char*>(len), 1);
  if (got == 0) {
    end = true;
    return false;
  }
  if (!in.read_exact(reinterpret_cast<char*>(len) + 1, 3))
    return false;
  uint32_t n = uint32_t{len[0]} << 24 | uint32_t{len[1]} << 16 | uint32_t{len[2]} << 8 | len[3];
  if (n > in.size())
    return false;
  std::string bytes(n, '\0');
  return in.read_exact(bytes.data(), n) && m.ParseFromString(bytes);
}

} // namespace

lock_table::lock_table(std::shared_ptr<std::atomic<uint64_t>> restored)
    : restored_(std::move(restored)) {}

std::string lock_table::apply(uint64_t index, const std::string& command) {
  applied_ = index;
  Command cmd;
  Result res;
  if (!cmd.ParseFromString(command))
    return res.SerializeAsString(); // not ok: a malformed command changes nothing
  if (cmd.has_acquire()) {
    auto& a = cmd.acquire();
    auto [i, fresh] = locks_.try_emplace(a.lock(), held{a.owner(), index});
    res.set_ok(fresh || i->second.owner == a.owner()); // already its own: the same grant
    res.set_token(i->second.token);                    // the fencing token: the grant's index
    res.set_holder(i->second.owner);
  } else if (cmd.has_release()) {
    auto& r = cmd.release();
    auto i = locks_.find(r.lock());
    if (i != locks_.end() && i->second.owner == r.owner() && i->second.token == r.token()) {
      locks_.erase(i);
      res.set_ok(true);
    } else if (i != locks_.end()) {
      res.set_holder(i->second.owner);
      res.set_token(i->second.token);
    }
  }
  return res.SerializeAsString();
}

std::string lock_table::query(const std::string& query) const {
  Query q;
  Holder h;
  if (q.ParseFromString(query))
    if (auto i = locks_.find(q.lock()); i != locks_.end()) {
      h.set_held(true);
      h.set_owner(i->second.owner);
      h.set_token(i->second.token);
    }
  return h.SerializeAsString();
}

std::unique_ptr<cafraft::snapshot_writer> lock_table::prepare_snapshot() {
  // A copy: the writer runs while applies go on. A lock table is small.
  return std::make_unique<table_writer>(locks_, applied_);
}

bool lock_table::restore(cafraft::snapshot_source& in) {
  SnapshotHeader h;
  bool end = false;
  if (!read_one(in, h, end))
    return false;
  std::map<std::string, held> locks;
  Record r;
  while (read_one(in, r, end))
    locks[r.lock()] = held{r.owner(), r.token()};
  if (!end || locks.size() != h.locks())
    return false;
  locks_ = std::move(locks);
  applied_ = h.applied_index();
  if (restored_)
    restored_->store(applied_);
  return true;
}

} // namespace lockservice
