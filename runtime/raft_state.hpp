// The Raft state of one node: a value type owned by exactly one role actor at a time, handed
// from role to role. No CAF, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/raft.pb.h"
#include "runtime/config.hpp"

namespace cafraft {

enum class role_kind { follower, candidate, leader };

const char* to_string(role_kind r);

struct raft_state {
  std::string id;

  // Persistent (§5.1 Figure 2): written to storage before anything that depends on it is sent.
  uint64_t term = 0;             // never decreases
  std::string voted_for;         // set at most once per term
  std::vector<pb::LogEntry> log; // log[i].index() == i + 1

  // What storage holds of term and voted_for (or is asked to hold): rules::take_hard_state()
  // compares against it to know when the hard state must be written.
  uint64_t stored_term = 0;
  std::string stored_vote;
  bool stored_resyncing = false;

  // The log was discarded after damage (durable_options::discard_corrupt_log): no vote, no
  // campaign until the log reaches resync_target, the leader's last index at first contact.
  bool resyncing = false;
  uint64_t resync_target = 0;

  // Volatile.
  uint64_t commit_index = 0; // never decreases; <= last_index()
  uint64_t apply_sent = 0;   // highest index handed to the state machine; <= commit_index
  std::string leader_id;     // leader of `term` when known, else empty

  std::vector<member> voters;

  uint64_t last_index() const { return log.size(); }
  uint64_t last_term() const { return log.empty() ? 0 : log.back().term(); }
  /// Term of the entry at `index`; 0 for index 0 or beyond the end.
  uint64_t term_at(uint64_t index) const {
    return index == 0 || index > log.size() ? 0 : log[index - 1].term();
  }
  const pb::LogEntry& entry(uint64_t index) const { return log[index - 1]; }

  size_t quorum() const { return voters.size() / 2 + 1; }
  bool is_voter(const std::string& node_id) const;
  std::string address_of(const std::string& node_id) const;
};

} // namespace cafraft
