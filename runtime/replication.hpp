// The leader's bookkeeping, without CAF: one progress record per follower (next and match
// index, the pipelining window), the commit rule, and ReadIndex rounds. The leader actor feeds
// it events and sends what it returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/raft_state.hpp"

namespace cafraft {

struct peer_progress {
  uint64_t next = 1;   // next index to send
  uint64_t match = 0;  // highest index known replicated; never decreases within a term
  uint64_t sent = 0;   // highest index sent while replicating
  size_t inflight = 0; // AppendEntries with entries not yet answered
  bool probing = true; // probe: one message at a time until the follower's log matches
  uint64_t match_at_last_tick = 0;
  uint64_t read_acked = 0; // highest ReadIndex round the follower answered in this term
};

struct replication_limits {
  size_t max_batch_entries = 512;
  size_t max_batch_bytes = 1 << 20;
  size_t max_inflight = 16;
};

class replication {
public:
  replication(raft_state& s, replication_limits limits);

  enum class send_mode {
    entries,   // only new entries the window allows
    heartbeat, // at least one message (it carries commit index and read round)
    tick,      // heartbeat, and retransmit what went unanswered since the last tick
  };

  /// AppendEntries to send to `peer` now.
  std::vector<pb::AppendEntries> to_send(const std::string& peer, send_mode mode);

  /// Records a response of the current term. Returns true when commit_index advanced.
  bool on_response(const pb::AppendEntriesResponse& resp);

  /// The leader's own log is durable through `index`. Returns true when commit_index advanced.
  bool on_local_persisted(uint64_t index);

  /// Starts a ReadIndex round (thesis §6.4) and returns its number.
  uint64_t new_read_round() { return ++read_round_; }
  /// Highest read round acknowledged by a majority of voters in this term.
  uint64_t confirmed_read_round() const;

  const std::map<std::string, peer_progress>& progress() const { return progress_; }
  uint64_t local_persisted() const { return local_persisted_; }

private:
  pb::AppendEntries make_append(uint64_t prev, uint64_t max_entries);
  bool advance_commit();

  raft_state& s_;
  replication_limits limits_;
  std::map<std::string, peer_progress> progress_;
  uint64_t local_persisted_ = 0;
  uint64_t read_round_ = 0;
};

} // namespace cafraft
