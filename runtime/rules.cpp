#include <cafraft/runtime/rules.hpp>

#include <algorithm>

#include <cafraft/runtime/canary.hpp>

namespace cafraft::rules {

bool observe_term(raft_state& s, uint64_t term) {
  if (term <= s.term)
    return false;
  s.term = term;
  s.voted_for.clear();
  s.leader_id.clear();
  return true;
}

std::optional<pb::HardState> take_hard_state(raft_state& s) {
  if (s.term == s.stored_term && s.voted_for == s.stored_vote &&
      s.resyncing == s.stored_resyncing && s.removed == s.stored_removed &&
      s.incarnation == s.stored_incarnation)
    return std::nullopt;
  s.stored_incarnation = s.incarnation;
  s.stored_term = s.term;
  s.stored_vote = s.voted_for;
  s.stored_resyncing = s.resyncing;
  s.stored_removed = s.removed;
  pb::HardState hs;
  hs.set_term(s.term);
  hs.set_voted_for(s.voted_for);
  hs.set_resyncing(s.resyncing);
  hs.set_removed(s.removed);
  hs.set_incarnation(s.incarnation);
  return hs;
}

bool log_up_to_date(const raft_state& s, uint64_t last_index, uint64_t last_term) {
  if (CAFRAFT_CANARY("vote_ignores_last_term")) // the longer log wins
    return last_index >= s.last_index();
  if (last_term != s.last_term())
    return last_term > s.last_term();
  return last_index >= s.last_index();
}

pb::RequestVoteResponse decide_vote(raft_state& s, const pb::RequestVote& req) {
  pb::RequestVoteResponse resp;
  resp.set_voter_id(s.id);
  // A resyncing node may have acknowledged entries it no longer has: its view of "up to date"
  // is wrong until it has caught up, so it grants nothing.
  bool grant = req.term() == s.term && !s.resyncing &&
               (s.voted_for.empty() || s.voted_for == req.candidate_id()) &&
               log_up_to_date(s, req.last_log_index(), req.last_log_term());
  if (grant)
    s.voted_for = req.candidate_id();
  resp.set_term(s.term);
  resp.set_granted(grant);
  return resp;
}

pb::RequestVoteResponse decide_pre_vote(const raft_state& s, const pb::RequestVote& req,
                                        bool leader_recent) {
  pb::RequestVoteResponse resp;
  resp.set_voter_id(s.id);
  resp.set_pre_vote(true);
  bool term_ok =
      req.term() > s.term || (req.term() == s.term && s.leader_id.empty() &&
                              (s.voted_for.empty() || s.voted_for == req.candidate_id()));
  bool grant = term_ok && !leader_recent && !s.resyncing &&
               log_up_to_date(s, req.last_log_index(), req.last_log_term());
  // A grant names the term it is for; a refusal tells the candidate our term.
  resp.set_term(grant ? req.term() : s.term);
  resp.set_granted(grant);
  return resp;
}

namespace {

// First index of the run of entries with the same term as the entry at `index`.
uint64_t first_index_of_term(const raft_state& s, uint64_t index) {
  auto t = s.term_at(index);
  while (index > s.snapshot_index + 1 && s.term_at(index - 1) == t)
    --index;
  return index;
}

} // namespace

append_effects accept_append(raft_state& s, const pb::AppendEntries& req) {
  append_effects fx;
  auto& resp = fx.response;
  resp.set_term(s.term);
  resp.set_follower_id(s.id);
  resp.set_incarnation(s.incarnation);
  resp.set_feature_level(s.feature_level);
  resp.set_read_round(req.read_round());
  resp.set_rejected_index(req.prev_log_index());
  auto prev = req.prev_log_index();
  if (prev > s.last_index()) {
    resp.set_success(false);
    resp.set_reject_hint(s.last_index() + 1);
    resp.set_last_log_index(s.last_index());
    return fx;
  }
  // Entries through snapshot_index are committed, so they match the leader's (§5.4.3).
  if (prev >= s.snapshot_index && s.term_at(prev) != req.prev_log_term() &&
      !CAFRAFT_CANARY("append_ignores_prev_term")) {
    // The entries of our conflicting term are all suspect: the leader retries before them.
    resp.set_success(false);
    resp.set_reject_hint(first_index_of_term(s, prev));
    resp.set_last_log_index(s.last_index());
    return fx;
  }
  // Consistent up to prev. Skip entries we already hold; cut at the first conflict (§5.3).
  uint64_t last_new = prev;
  bool config_seen = false;
  for (auto& e : req.entries()) {
    if (e.index() != last_new + 1) // malformed: entries must be contiguous after prev
      break;
    last_new = e.index();
    if (e.index() <= s.snapshot_index)
      continue;
    if (e.index() <= s.last_index()) {
      if (CAFRAFT_CANARY("conflict_not_truncated")) // entries it holds are taken as the leader's
        continue;
      if (s.term_at(e.index()) == e.term() && !CAFRAFT_CANARY("truncate_on_matching_append"))
        continue;
      // §5.3: delete the existing entry and all that follow it. Committed entries never
      // conflict (leader completeness); the invariant checker in the tests holds us to that.
      s.truncate_from(e.index());
      if (fx.truncated_from == 0 || e.index() < fx.truncated_from)
        fx.truncated_from = e.index();
    }
    s.log.push_back(e);
    fx.appended.push_back(e);
    config_seen = config_seen || e.type() == pb::ENTRY_CONFIG;
  }
  if (config_seen || fx.truncated_from > 0)
    refresh_config(s);
  // Only entries verified against this request may be committed (§5.3, Figure 2 rule 5).
  auto new_commit = std::min(req.leader_commit(), last_new);
  if (new_commit > s.commit_index || CAFRAFT_CANARY("commit_index_decreases"))
    s.commit_index = new_commit;
  if (s.resyncing) {
    // Everything this node may have acknowledged before it lost its log is in the log of this
    // leader (of its term, or committed and so in every later leader's log).
    if (s.resync_target == 0)
      s.resync_target = std::max<uint64_t>(req.leader_last_index(), 1);
    if (last_new >= s.resync_target || req.leader_last_index() == 0)
      s.resyncing = false;
  }
  resp.set_success(true);
  resp.set_match_index(last_new);
  resp.set_last_log_index(s.last_index());
  return fx;
}

pb::AppendEntriesResponse reject_stale_append(const raft_state& s, const pb::AppendEntries& req) {
  pb::AppendEntriesResponse resp;
  resp.set_term(s.term);
  resp.set_follower_id(s.id);
  resp.set_incarnation(s.incarnation);
  resp.set_feature_level(s.feature_level);
  resp.set_success(false);
  resp.set_rejected_index(req.prev_log_index());
  resp.set_reject_hint(req.prev_log_index());
  resp.set_last_log_index(s.last_index());
  return resp;
}

bool install_snapshot(raft_state& s, const pb::SnapshotMeta& meta) {
  bool keep = meta.index() <= s.last_index() && s.term_at(meta.index()) == meta.term();
  if (keep)
    s.log.erase(s.log.begin(),
                s.log.begin() + static_cast<std::ptrdiff_t>(meta.index() - s.snapshot_index));
  else
    s.log.clear();
  s.snapshot_index = meta.index();
  s.snapshot_term = meta.term();
  s.base_config = configuration::from_members(meta.members(), meta.index());
  refresh_config(s);
  s.cluster_level = std::max(s.cluster_level, meta.cluster_level());
  s.commit_index = std::max(s.commit_index, meta.index());
  s.apply_sent = std::max(s.apply_sent, meta.index());
  if (s.resyncing && s.resync_target > 0 && meta.index() >= s.resync_target)
    s.resyncing = false;
  return !keep;
}

void compact(raft_state& s, const pb::SnapshotMeta& meta) {
  if (meta.index() <= s.snapshot_index || meta.index() > s.last_index() ||
      s.term_at(meta.index()) != meta.term())
    return;
  for (auto i = meta.index(); i > s.snapshot_index; --i)
    if (auto c = config_of(s.entry(i))) {
      s.base_config = std::move(*c);
      s.base_config.index = i;
      break;
    }
  s.log.erase(s.log.begin(),
              s.log.begin() + static_cast<std::ptrdiff_t>(meta.index() - s.snapshot_index));
  s.snapshot_index = meta.index();
  s.snapshot_term = meta.term();
}

std::vector<pb::LogEntry> take_committed(raft_state& s) {
  std::vector<pb::LogEntry> out;
  while (s.apply_sent < s.commit_index) {
    ++s.apply_sent;
    out.push_back(s.entry(s.apply_sent));
    if (auto level = cluster_level_of(out.back()); level > s.cluster_level)
      s.cluster_level = level;
  }
  return out;
}

uint32_t cluster_level_of(const pb::LogEntry& e) {
  if (e.type() != pb::ENTRY_CLUSTER_LEVEL)
    return 0;
  try {
    auto v = std::stoul(e.data());
    return v > 1000000 ? 0 : static_cast<uint32_t>(v);
  } catch (...) {
    return 0;
  }
}

pb::LogEntry& append_cluster_level(raft_state& s, uint32_t level) {
  pb::LogEntry e;
  e.set_index(s.last_index() + 1);
  e.set_term(s.term);
  e.set_type(pb::ENTRY_CLUSTER_LEVEL);
  e.set_data(std::to_string(level));
  s.log.push_back(std::move(e));
  return s.log.back();
}

std::optional<configuration> config_of(const pb::LogEntry& e) {
  pb::Configuration c;
  if (e.type() != pb::ENTRY_CONFIG || !c.ParseFromString(e.data()))
    return std::nullopt;
  return configuration::from_members(c.members(), e.index());
}

void refresh_config(raft_state& s) {
  s.config = s.base_config;
  for (auto i = s.last_index(); i > s.snapshot_index; --i)
    if (auto c = config_of(s.entry(i))) {
      s.config = std::move(*c);
      break;
    }
  if (s.self() != nullptr)
    s.was_member = true;
}

const pb::LogEntry& append_config(raft_state& s, std::vector<member> next) {
  configuration c;
  c.members = std::move(next);
  c.index = s.last_index() + 1;
  pb::LogEntry e;
  e.set_index(c.index);
  e.set_term(s.term);
  e.set_type(pb::ENTRY_CONFIG);
  e.set_data(c.to_proto().SerializeAsString());
  s.log.push_back(std::move(e));
  s.config = std::move(c);
  if (s.self() != nullptr)
    s.was_member = true;
  return s.log.back();
}

bool config_change_allowed(const raft_state& s, uint64_t own_term_index) {
  return (s.config.index <= s.commit_index || CAFRAFT_CANARY("config_changes_overlap")) &&
         own_term_index > 0 && own_term_index <= s.commit_index;
}

bool check_removed(raft_state& s) {
  if (!s.removed && s.was_member && s.self() == nullptr && s.config.index > 0 &&
      s.config.index <= s.commit_index)
    s.removed = true;
  return s.removed;
}

bool candidate_removed(const raft_state& s, const pb::RequestVote& req) {
  auto at = s.config.index;
  if (at == 0 || at > s.commit_index || s.config.find(req.candidate_id(), req.incarnation()))
    return false;
  if (req.last_log_index() < at)
    return true;
  auto r = req.removed_at();
  return r > 0 && r <= s.commit_index &&
         (r <= s.snapshot_index || s.term_at(r) == req.removed_at_term());
}

void describe_candidate(const raft_state& s, pb::RequestVote& req) {
  req.set_incarnation(s.incarnation);
  if (s.self() == nullptr && s.config.index > 0) {
    req.set_removed_at(s.config.index);
    req.set_removed_at_term(s.term_at(s.config.index));
  }
}

raft_state recover(const recovered_state& rec, std::vector<pb::LogEntry> log, const std::string& id,
                   const std::vector<member>& initial_members) {
  raft_state rs;
  rs.term = rec.hard_state.term();
  if (!CAFRAFT_CANARY("vote_forgotten_at_restart")) // else: the term is back, its vote is not
    rs.voted_for = rec.hard_state.voted_for();
  rs.log = std::move(log);
  rs.resyncing = rec.hard_state.resyncing();
  if (rec.snapshot) { // everything in it was committed and applied
    rs.snapshot_index = rec.snapshot->index();
    rs.snapshot_term = rec.snapshot->term();
    rs.commit_index = rs.apply_sent = rs.snapshot_index;
    rs.base_config = configuration::from_members(rec.snapshot->members(), rs.snapshot_index);
    rs.cluster_level = std::max(rs.cluster_level, rec.snapshot->cluster_level());
  } else {
    rs.base_config.members = initial_members; // until the log says otherwise
  }
  rs.id = id;
  rs.stored_term = rs.term;
  rs.stored_vote = rs.voted_for;
  rs.stored_resyncing = rs.resyncing;
  rs.incarnation = rs.stored_incarnation = rec.hard_state.incarnation();
  rs.was_member = rs.base_config.find(id, rs.incarnation) != nullptr;
  for (auto& e : rs.log)
    if (auto c = config_of(e); c && c->find(id, rs.incarnation))
      rs.was_member = true;
  refresh_config(rs);
  return rs;
}

} // namespace cafraft::rules
