#include <cafraft/actors/role_common.hpp>

namespace cafraft {

pb::NodeStatus make_status(const raft_state& s, role_kind role, uint64_t group) {
  pb::NodeStatus st;
  st.set_group(group);
  st.set_id(s.id);
  st.set_role(to_string(role));
  st.set_term(s.term);
  st.set_leader_id(s.leader_id);
  st.set_leader_address(s.address_of(s.leader_id));
  st.set_commit_index(s.commit_index);
  st.set_last_log_index(s.last_index());
  st.set_applied_index(s.apply_sent);
  *st.mutable_members() = s.config.to_proto().members();
  st.set_feature_level(s.feature_level);
  st.set_cluster_level(s.cluster_level);
  st.set_quiesced(s.quiesced);
  return st;
}

std::vector<std::pair<std::string, std::string>> role_fields(const raft_state& s) {
  std::string members;
  for (auto& m : s.config.members)
    members += (members.empty() ? "" : ",") + m.id + (m.learner ? "(learner)" : "");
  return {{"term", std::to_string(s.term)},
          {"voted_for", s.voted_for},
          {"leader", s.leader_id},
          {"commit_index", std::to_string(s.commit_index)},
          {"applied_index", std::to_string(s.apply_sent)},
          {"last_index", std::to_string(s.last_index())},
          {"snapshot_index", std::to_string(s.snapshot_index)},
          {"config_index", std::to_string(s.config.index)},
          {"members", members},
          {"quiesced", s.quiesced ? "yes" : "no"}};
}

caf::error redirect_error(const raft_state& s) {
  if (s.leader_id.empty() || s.leader_id == s.id)
    return make_error(errc::unknown_leader);
  return make_not_leader(s.leader_id, s.address_of(s.leader_id));
}

} // namespace cafraft
