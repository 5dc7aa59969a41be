#include <cafraft/runtime/raft_state.hpp>

namespace cafraft {

const char* to_string(role_kind r) {
  switch (r) {
  case role_kind::follower:
    return "follower";
  case role_kind::candidate:
    return "candidate";
  case role_kind::leader:
    return "leader";
  }
  return "?";
}

const member* configuration::find(const std::string& id) const {
  for (auto& m : members)
    if (m.id == id)
      return &m;
  return nullptr;
}

const member* configuration::find(const std::string& id, uint64_t incarnation) const {
  auto m = find(id);
  return m != nullptr && m->incarnation == incarnation ? m : nullptr;
}

bool configuration::is_voter(const std::string& id) const {
  auto m = find(id);
  return m != nullptr && !m->learner;
}

size_t configuration::voters() const {
  size_t n = 0;
  for (auto& m : members)
    n += m.learner ? 0 : 1;
  return n;
}

pb::Configuration configuration::to_proto() const {
  pb::Configuration c;
  for (auto& m : members) {
    auto* pm = c.add_members();
    pm->set_id(m.id);
    pm->set_address(m.address);
    pm->set_learner(m.learner);
    pm->set_incarnation(m.incarnation);
  }
  return c;
}

configuration configuration::from_members(const google::protobuf::RepeatedPtrField<pb::Member>& ms,
                                          uint64_t index) {
  configuration c;
  c.index = index;
  for (auto& m : ms)
    c.members.push_back(member{m.id(), m.address(), m.learner(), m.incarnation()});
  return c;
}

std::string raft_state::address_of(const std::string& node_id) const {
  auto m = config.find(node_id);
  return m ? m->address : std::string{};
}

} // namespace cafraft
