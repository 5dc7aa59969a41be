#include <cafraft/runtime/config.hpp>

#include <set>

namespace cafraft {

std::string node_config::address_of(const std::string& node_id) const {
  for (auto& m : members)
    if (m.id == node_id)
      return m.address;
  return {};
}

std::string node_config::own_address() const {
  return address.empty() ? address_of(id) : address;
}

std::string validate(const node_config& cfg) {
  if (cfg.id.empty())
    return "node id must not be empty";
  if (cfg.priority < 0 || cfg.priority > 100)
    return "priority must be between 0 and 100";
  if (cfg.max_pending_changes == 0 || cfg.max_pending_events == 0)
    return "max_pending_changes and max_pending_events must be positive";
  std::set<std::string> ids;
  bool self = false;
  for (auto& m : cfg.members) {
    if (m.id.empty())
      return "a member has an empty id";
    if (!ids.insert(m.id).second)
      return "member id " + m.id + " appears twice";
    self = self || m.id == cfg.id;
  }
  if (!self && !cfg.members.empty())
    return "node " + cfg.id + " is not among the members";
  if (cfg.members.empty() && cfg.address.empty())
    return "a node that joins (no members given) needs its own address";
  if (cfg.election_timeout_min.count() <= 0 || cfg.election_timeout_max < cfg.election_timeout_min)
    return "election timeouts must satisfy 0 < min <= max";
  if (cfg.heartbeat_interval.count() <= 0 || cfg.heartbeat_interval >= cfg.election_timeout_min)
    return "heartbeat interval must be positive and below the minimum election timeout";
  if (cfg.lease_reads && (!cfg.check_quorum || !cfg.pre_vote))
    return "lease reads need check-quorum and pre-vote";
  if (cfg.clock_drift_ppm >= 1000000)
    return "the clock drift bound must be below 1000000 ppm";
  if (!(cfg.clock_rate > 0))
    return "the clock rate must be positive";
  if (cfg.data_dir.empty() && !cfg.storage)
    return "no storage: set data_dir (or a storage object)";
  if (!cfg.data_dir.empty() && cfg.storage)
    return "set either data_dir or a storage object, not both";
  if (cfg.wal_segment_bytes < 4096)
    return "wal_segment_bytes must be at least 4096";
  if (cfg.snapshot_chunk_bytes == 0 || cfg.snapshot_chunk_bytes > (64u << 20))
    return "snapshot_chunk_bytes must be between 1 and 64 MiB";
  if (cfg.max_batch_entries == 0 || cfg.max_inflight == 0 || cfg.max_batch_bytes == 0)
    return "batch sizes and the inflight window must be positive";
  return {};
}

} // namespace cafraft
