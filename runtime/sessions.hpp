// Client sessions (thesis §6.3, docs/sessions.md): the table that makes a retried write apply
// once. It lives beside the state machine, in the state machine actor, so every state machine
// gets it: an ENTRY_SESSION entry goes through the table, which hands a fresh write's command to
// the state machine and answers a retry with the answer it saved.
//
// Everything here is a function of the log: a session expires when the time of the session
// entries (each stamped with its leader's clock; the table keeps the highest seen) passes its
// last write by its timeout, so every node expires the same sessions at the same entry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

class session_table {
public:
  /// Sessions the table holds at most: opening one more expires the least recently active.
  static constexpr size_t max_sessions = 100000;
  /// Answers a session keeps that its client has not acknowledged (SessionTag::acked_below);
  /// beyond it the oldest is dropped, and a retry of it is refused.
  static constexpr size_t max_answers = 4096;

  /// Applies the ENTRY_SESSION entry at `index` (data: an encoded pb::SessionEntry). A fresh
  /// write's command goes to `run` (the state machine's apply), whose result is saved; a
  /// duplicate is answered with the saved result and `run` is not called.
  pb::SessionResult apply(uint64_t index, const std::string& data,
                          const std::function<std::string(const std::string&)>& run);

  /// The table as a snapshot holds it, and back (false: malformed; the table is unchanged).
  std::string encode() const;
  bool decode(const std::string& bytes);

  size_t size() const { return sessions_.size(); }
  bool empty() const { return sessions_.empty(); }
  /// Writes answered from the table instead of applied again, since this table was made.
  uint64_t duplicates() const { return duplicates_; }
  /// Sessions expired since this table was made.
  uint64_t expired() const { return expired_; }

private:
  struct session {
    uint64_t timeout_ms = 0;
    uint64_t last_active_ms = 0;
    uint64_t acked_below = 0;
    std::map<uint64_t, std::pair<uint64_t, std::string>> answers; // sequence -> (index, result)
  };
  void expire(uint64_t now_ms);
  void touch(uint64_t id, session& s);

  uint64_t time_ms_ = 0;
  std::map<uint64_t, session> sessions_;
  std::set<std::pair<uint64_t, uint64_t>> by_deadline_; // (last_active + timeout, id)
  uint64_t duplicates_ = 0;
  uint64_t expired_ = 0;
};

} // namespace cafraft
