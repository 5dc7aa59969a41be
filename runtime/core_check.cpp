// The core's invariants (runtime/core.hpp), checked after every step when
// node_config::check_invariants is set.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <cafraft/runtime/core.hpp>

namespace cafraft::core {

namespace {

// What the checks say, built only when one fails (they run after every step).
struct report {
  std::string text;
  report& operator<<(const std::string& x) {
    text += x;
    return *this;
  }
  report& operator<<(const char* x) {
    text += x;
    return *this;
  }
  report& operator<<(uint64_t x) {
    text += std::to_string(x);
    return *this;
  }
};

} // namespace

before_step before_step::of(const raft_state& s) {
  return before_step{s.term, s.voted_for, s.commit_index, s.term_at(s.commit_index)};
}

std::string violation(const raft_state& s, role_kind role, bool role_rules) {
  report out;
  if (!s.log.empty()) {
    if (s.log.front().index() != s.snapshot_index + 1)
      out << "the log starts at " << s.log.front().index() << ", not after the snapshot at "
          << s.snapshot_index << "; ";
    if (s.log.back().index() != s.last_index())
      out << "the log has gaps: its last entry is " << s.log.back().index() << " of "
          << s.log.size() << " after " << s.snapshot_index << "; ";
    if (s.log.front().term() < s.snapshot_term)
      out << "the first entry's term " << s.log.front().term() << " is below the snapshot's "
          << s.snapshot_term << "; ";
    if (s.log.size() > 1 && s.log.back().term() < s.log[s.log.size() - 2].term())
      out << "the last entry's term goes down; ";
  }
  if (s.last_term() > s.term)
    out << "the log holds term " << s.last_term() << ", after the node's term " << s.term << "; ";
  if (s.commit_index > s.last_index())
    out << "commit index " << s.commit_index << " beyond the last entry " << s.last_index() << "; ";
  if (s.commit_index < s.snapshot_index)
    out << "commit index " << s.commit_index << " before the snapshot " << s.snapshot_index << "; ";
  if (s.apply_sent > s.commit_index)
    out << "entries through " << s.apply_sent << " applied, commit index " << s.commit_index
        << "; ";
  if (role_rules && role == role_kind::leader && s.leader_id != s.id)
    out << "a leader that names " << (s.leader_id.empty() ? "no one" : s.leader_id)
        << " as leader; ";
  if (role_rules && role == role_kind::leader && s.voted_for != s.id)
    out << "a leader that did not vote for itself in its term; ";
  return out.text;
}

std::string step_violation(const before_step& before, const raft_state& after) {
  report out;
  if (after.term < before.term)
    out << "the term went down from " << before.term << " to " << after.term << "; ";
  if (after.term == before.term && !before.voted_for.empty() && after.voted_for != before.voted_for)
    out << "the vote of term " << after.term << " changed from " << before.voted_for << " to "
        << (after.voted_for.empty() ? "none" : after.voted_for) << "; ";
  if (after.commit_index < before.commit_index)
    out << "the commit index went down from " << before.commit_index << " to " << after.commit_index
        << "; ";
  auto i = before.commit_index;
  if (i > after.snapshot_index && i <= after.last_index() && after.term_at(i) != before.commit_term)
    out << "committed entry " << i << " changed from term " << before.commit_term << " to "
        << after.term_at(i) << "; ";
  if (i > after.last_index())
    out << "committed entry " << i << " left the log (last index " << after.last_index() << "); ";
  return out.text;
}

void check(const before_step& before, const raft_state& after, role_kind role, bool handing_over) {
  auto what = violation(after, role, !handing_over) + step_violation(before, after);
  if (what.empty())
    return;
  std::fprintf(stderr,
               "cafraft: the Raft core broke an invariant at %s (%s): %s\n"
               "  before: term %llu, vote '%s', commit %llu (term %llu)\n"
               "  after:  term %llu, vote '%s', commit %llu, applied %llu, snapshot %llu "
               "(term %llu), last %llu (term %llu), leader '%s', config at %llu\n",
               after.id.c_str(), to_string(role), what.c_str(),
               static_cast<unsigned long long>(before.term), before.voted_for.c_str(),
               static_cast<unsigned long long>(before.commit_index),
               static_cast<unsigned long long>(before.commit_term),
               static_cast<unsigned long long>(after.term), after.voted_for.c_str(),
               static_cast<unsigned long long>(after.commit_index),
               static_cast<unsigned long long>(after.apply_sent),
               static_cast<unsigned long long>(after.snapshot_index),
               static_cast<unsigned long long>(after.snapshot_term),
               static_cast<unsigned long long>(after.last_index()),
               static_cast<unsigned long long>(after.last_term()), after.leader_id.c_str(),
               static_cast<unsigned long long>(after.config.index));
  std::abort();
}

} // namespace cafraft::core
