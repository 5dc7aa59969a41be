#include "runtime/raft_state.hpp"

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

bool raft_state::is_voter(const std::string& node_id) const {
  for (auto& m : voters)
    if (m.id == node_id)
      return true;
  return false;
}

std::string raft_state::address_of(const std::string& node_id) const {
  for (auto& m : voters)
    if (m.id == node_id)
      return m.address;
  return {};
}

} // namespace cafraft
