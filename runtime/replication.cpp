#include <cafraft/runtime/replication.hpp>

#include <algorithm>

#include <cafraft/runtime/canary.hpp>

namespace cafraft {

replication::replication(raft_state& s, replication_limits limits) : s_(s), limits_(limits) {
  on_config_change();
}

void replication::on_config_change() {
  for (auto& [id, p] : progress_) {
    auto m = s_.config.find(id);
    if (m != nullptr && m->incarnation == p.incarnation) {
      p.departing = false;
    } else if (!p.departing) {
      p.departing = true;
      p.departing_index = s_.config.index;
      p.departing_ticks = 0;
    }
  }
  for (auto& m : s_.config.members) {
    auto i = progress_.find(m.id);
    if (m.id == s_.id || (i != progress_.end() && !i->second.departing))
      continue;
    if (i != progress_.end()) // the same id, joined again as another node
      progress_.erase(i);
    peer_progress p;
    p.incarnation = m.incarnation;
    p.next = s_.last_index() + 1; // optimistic (§5.3); rejections walk it back
    p.sent = s_.last_index();
    progress_.emplace(m.id, p);
  }
}

pb::AppendEntries replication::make_append(uint64_t prev, uint64_t max_entries) {
  pb::AppendEntries ae;
  ae.set_term(s_.term);
  ae.set_leader_id(s_.id);
  ae.set_prev_log_index(prev);
  ae.set_prev_log_term(s_.term_at(prev));
  ae.set_leader_commit(s_.commit_index);
  ae.set_read_round(read_round_);
  ae.set_leader_last_index(s_.last_index());
  size_t bytes = 0;
  for (uint64_t i = prev + 1; i <= s_.last_index() && max_entries > 0; ++i, --max_entries) {
    auto& e = s_.entry(i);
    bytes += e.data().size() + 24;
    if (bytes > limits_.max_batch_bytes && ae.entries_size() > 0)
      break;
    *ae.add_entries() = e;
  }
  return ae;
}

std::vector<pb::AppendEntries> replication::to_send(const std::string& peer, send_mode mode) {
  bool tick = mode == send_mode::tick;
  bool must_send = mode != send_mode::entries;
  std::vector<pb::AppendEntries> out;
  auto i = progress_.find(peer);
  if (i == progress_.end())
    return out;
  auto& p = i->second;
  if (p.departing && tick && s_.commit_index >= p.departing_index)
    ++p.departing_ticks; // heartbeats since its removal was committed
  if (needs_snapshot(p))
    return out;
  if (p.probing) {
    // One message at a time; a heartbeat tick resends it in case it was lost.
    if (must_send || p.inflight == 0) {
      out.push_back(make_append(p.next - 1, limits_.max_batch_entries));
      p.inflight = 1;
    }
    return out;
  }
  if (tick) {
    if (p.match == p.match_at_last_tick && p.match < p.sent) {
      // Nothing was acknowledged for a whole heartbeat interval: assume the window was lost.
      p.sent = p.match;
      p.inflight = 0;
    }
    p.match_at_last_tick = p.match;
  }
  if (p.sent < s_.snapshot_index) {
    // The follower needs entries that are compacted away: an answer from before the last
    // compaction (reordered, or of a follower that misbehaves) ended a probe, or the window was
    // reset to a match below the snapshot. It gets the snapshot.
    p.next = p.sent + 1;
    if (needs_snapshot(p))
      return out;
  }
  while (p.sent < s_.last_index() && p.inflight < limits_.max_inflight) {
    auto ae = make_append(p.sent, limits_.max_batch_entries);
    p.sent += static_cast<uint64_t>(ae.entries_size());
    ++p.inflight;
    out.push_back(std::move(ae));
  }
  if (must_send && out.empty()) // heartbeat: checks the log at match, carries commit and read round
    out.push_back(make_append(p.match, 0));
  return out;
}

bool replication::on_response(const pb::AppendEntriesResponse& resp) {
  auto i = progress_.find(resp.follower_id());
  if (i == progress_.end() || resp.term() != s_.term || resp.incarnation() != i->second.incarnation)
    return false;
  auto& p = i->second;
  p.recent_active = true;
  p.feature_level = resp.feature_level();
  p.read_acked = std::max(p.read_acked, resp.read_round());
  if (resp.success()) {
    if (resp.match_index() > s_.last_index()) // impossible unless the follower misbehaves
      return false;
    if (p.inflight > 0)
      --p.inflight;
    if (resp.match_index() > p.match)
      p.match = resp.match_index();
    p.next = std::max(p.next, p.match + 1);
    if (p.probing) {
      p.probing = false;
      p.inflight = 0;
      p.sent = p.match;
      p.next = p.match + 1; // a follower behind the snapshot gets the snapshot (to_send)
    }
    p.sent = std::max(p.sent, p.match);
    if (p.snapshotting && p.match >= p.snapshot_index)
      p.snapshotting = false; // a late answer shows the follower has what the snapshot holds
    return advance_commit();
  }
  // A reject for an index at or below what is already matched is stale (reordered): ignore.
  if (resp.rejected_index() <= p.match && p.match > 0)
    return false;
  auto hint = std::min(resp.reject_hint(), resp.rejected_index());
  p.next = std::max(p.match + 1, std::max<uint64_t>(hint, 1));
  p.probing = true;
  p.inflight = 0;
  p.sent = p.next - 1;
  return false;
}

bool replication::needs_snapshot(peer_progress& p) {
  if (!p.snapshotting && p.next <= s_.snapshot_index) {
    // The entries the follower needs next are compacted away.
    p.snapshotting = true;
    p.snapshot_index = s_.snapshot_index;
    p.snapshot_offset = 0;
    p.chunk_inflight = false;
  }
  return p.snapshotting;
}

std::optional<uint64_t> replication::snapshot_chunk_due(const std::string& peer, send_mode mode) {
  auto i = progress_.find(peer);
  if (i == progress_.end() || !needs_snapshot(i->second))
    return std::nullopt;
  auto& p = i->second;
  if (mode == send_mode::tick && p.chunk_inflight && ++p.ticks_waited > p.resend_after) {
    // No progress for more than a whole heartbeat interval: the chunk (or its answer) was
    // lost; send it again, backing off so that a slow link is not flooded with copies.
    p.chunk_inflight = false;
    p.ticks_waited = 0;
    p.resend_after = std::min<uint64_t>(p.resend_after * 2, 64);
  }
  if (p.chunk_inflight)
    return std::nullopt;
  p.chunk_inflight = true;
  return p.snapshot_offset;
}

bool replication::chunk_read(const std::string& peer, uint64_t snapshot_index, uint64_t offset) {
  auto i = progress_.find(peer);
  if (i == progress_.end() || !i->second.snapshotting)
    return false;
  auto& p = i->second;
  if (p.snapshot_index != snapshot_index) {
    p.snapshot_index = snapshot_index;
    p.snapshot_offset = 0;
    p.chunk_inflight = false;
    p.ticks_waited = 0;
    p.resend_after = 1;
    return false;
  }
  return offset == p.snapshot_offset;
}

bool replication::on_snapshot_response(const pb::InstallSnapshotResponse& resp) {
  auto i = progress_.find(resp.follower_id());
  if (i == progress_.end() || resp.term() != s_.term || resp.incarnation() != i->second.incarnation)
    return false;
  auto& p = i->second;
  p.recent_active = true;
  if (!p.snapshotting || resp.snapshot_index() != p.snapshot_index)
    return false; // a late answer about an earlier transfer
  if (!resp.installed()) {
    auto next = resp.next_offset();
    if (next > p.snapshot_offset || (next == 0 && p.snapshot_offset > 0)) {
      // Progress, or the follower lost the transfer (or its checksum failed): go on from
      // where it is. Answers to duplicates and late answers change nothing, so that only one
      // chunk is ever in flight.
      p.snapshot_offset = next;
      p.chunk_inflight = false;
      p.ticks_waited = 0;
      p.resend_after = 1;
    }
    return false;
  }
  p.snapshotting = false;
  p.chunk_inflight = false;
  p.match = std::max(p.match, resp.snapshot_index());
  p.next = p.match + 1;
  p.sent = p.match;
  p.probing = true; // the follower may hold more after the snapshot: probe from there
  p.inflight = 0;
  return advance_commit();
}

std::vector<std::string> replication::drop_departed(uint64_t max_ticks) {
  std::vector<std::string> gone;
  for (auto i = progress_.begin(); i != progress_.end();) {
    auto& p = i->second;
    bool knows = p.match >= p.departing_index && s_.commit_index >= p.departing_index &&
                 p.departing_ticks >= 2; // and a heartbeat since carried the commit index
    if (p.departing && (knows || p.departing_ticks > max_ticks)) {
      gone.push_back(i->first);
      i = progress_.erase(i);
    } else {
      ++i;
    }
  }
  return gone;
}

bool replication::on_local_persisted(uint64_t index) {
  local_persisted_ = std::max(local_persisted_, index);
  return advance_commit();
}

bool replication::advance_commit() {
  std::vector<uint64_t> matches;
  for (auto& m : s_.config.members) {
    if (m.learner)
      continue;
    if (m.id == s_.id) {
      matches.push_back(local_persisted_);
    } else {
      auto i = progress_.find(m.id);
      matches.push_back(i == progress_.end() ? 0 : i->second.match);
    }
  }
  if (matches.empty())
    return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  auto n = matches[s_.quorum() - 1];
  // §5.4.2 (Figure 8): only an entry of the current term is committed by counting replicas.
  if (n > s_.commit_index &&
      (s_.term_at(n) == s_.term || CAFRAFT_CANARY("commit_older_term_by_counting"))) {
    s_.commit_index = n;
    return true;
  }
  return false;
}

bool replication::quorum_active() {
  size_t active = 0;
  for (auto& m : s_.config.members) {
    if (m.learner)
      continue;
    if (m.id == s_.id) {
      ++active;
      continue;
    }
    auto i = progress_.find(m.id);
    if (i != progress_.end() && i->second.recent_active)
      ++active;
  }
  for (auto& [id, p] : progress_)
    p.recent_active = false;
  return active >= s_.quorum();
}

uint64_t replication::confirmed_read_round() const {
  std::vector<uint64_t> acks;
  for (auto& m : s_.config.members) {
    if (m.learner)
      continue;
    if (m.id == s_.id) {
      acks.push_back(read_round_);
    } else {
      auto i = progress_.find(m.id);
      acks.push_back(i == progress_.end() ? 0 : i->second.read_acked);
    }
  }
  if (acks.empty())
    return 0;
  std::sort(acks.begin(), acks.end(), std::greater<>());
  return acks[s_.quorum() - 1];
}

} // namespace cafraft
