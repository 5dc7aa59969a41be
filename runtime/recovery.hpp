// Recovery when a majority of the cluster is lost for good (docs/deployment.md, "When members
// are lost"): a surviving node becomes the only voter of a new configuration, keeping its log,
// its state machine and its cluster id (etcd's --force-new-cluster, Ra's
// force_shrink_members_to_current_member).
#pragma once

#include <string>

#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/durable_storage.hpp>

namespace cafraft {

struct forced_cluster {
  std::string previous_members; // "n1@a:1, n2@b:1, ..."
  uint64_t last_index = 0;      // of the log before the new configuration
  uint64_t config_index = 0;    // the entry that makes `self` the only voter
  uint64_t term = 0;            // its term
};

/// Appends to the log in `opts.dir` a configuration entry with `self` as the only voter, in a
/// term above every term the node has seen, and makes it durable. Every entry the node holds
/// is then committed by its first leadership (uncommitted ones too, as with etcd). Throws
/// std::runtime_error (or storage_error) with the reason, having changed nothing, when the
/// directory holds no data or a log the node discarded (discard_corrupt_log).
forced_cluster force_new_cluster(durable_options opts, const member& self);

} // namespace cafraft
