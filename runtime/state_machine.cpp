#include <cafraft/runtime/state_machine.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

state_machine::~state_machine() = default;

std::string kv_store::apply(uint64_t, const std::string& command) {
  pb::KvCommand cmd;
  pb::KvResult res;
  if (!cmd.ParseFromString(command))
    return res.SerializeAsString(); // proposals are validated before they enter the log
  const std::string& key = cmd.has_put()   ? cmd.put().key()
                           : cmd.has_cas() ? cmd.cas().key()
                                           : cmd.del().key();
  auto i = data_.find(key);
  if (i != data_.end()) {
    res.set_existed(true);
    res.set_previous(i->second);
  }
  if (cmd.has_cas()) {
    auto& c = cmd.cas();
    bool holds =
        c.expect_absent() ? i == data_.end() : i != data_.end() && i->second == c.expected();
    if (!holds)
      res.set_compare_failed(true);
    else if (i != data_.end())
      i->second = c.value();
    else
      data_.emplace(key, c.value());
  } else if (cmd.has_put()) {
    if (i != data_.end())
      i->second = cmd.put().value();
    else
      data_.emplace(key, cmd.put().value());
  } else if (cmd.has_del() && i != data_.end()) {
    data_.erase(i);
  }
  return res.SerializeAsString();
}

std::string kv_store::query(const std::string& query) const {
  pb::KvQuery q;
  pb::GetResponse resp;
  if (q.ParseFromString(query)) {
    auto i = data_.find(q.key());
    if (i != data_.end()) {
      resp.set_found(true);
      resp.set_value(i->second);
    }
  }
  return resp.SerializeAsString();
}

std::string kv_store::snapshot() const {
  pb::KvCommand put; // a snapshot is the sequence of puts that rebuilds the map
  std::string out;
  for (auto& [k, v] : data_) {
    put.mutable_put()->set_key(k);
    put.mutable_put()->set_value(v);
    auto s = put.SerializeAsString();
    auto n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof(n));
    out += s;
  }
  return out;
}

bool kv_store::restore(const std::string& snapshot) {
  std::map<std::string, std::string> data;
  size_t pos = 0;
  while (pos < snapshot.size()) {
    uint32_t n = 0;
    if (snapshot.size() - pos < sizeof(n))
      return false;
    snapshot.copy(reinterpret_cast<char*>(&n), sizeof(n), pos);
    pos += sizeof(n);
    pb::KvCommand put;
    if (snapshot.size() - pos < n ||
        !put.ParseFromArray(snapshot.data() + pos, static_cast<int>(n)) || !put.has_put())
      return false;
    pos += n;
    data[put.put().key()] = put.put().value();
  }
  data_ = std::move(data);
  return true;
}

} // namespace cafraft
