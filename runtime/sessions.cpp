#include <cafraft/runtime/sessions.hpp>

#include <algorithm>

#include <cafraft/messages/errc.hpp>
#include <cafraft/runtime/canary.hpp>

namespace cafraft {

namespace {

pb::SessionResult refuse(errc code, std::string detail) {
  pb::SessionResult r;
  r.set_error(static_cast<uint32_t>(code));
  r.set_detail(std::move(detail));
  return r;
}

} // namespace

void session_table::expire(uint64_t now_ms) {
  while (!by_deadline_.empty() && by_deadline_.begin()->first < now_ms) {
    sessions_.erase(by_deadline_.begin()->second);
    by_deadline_.erase(by_deadline_.begin());
    ++expired_;
  }
}

void session_table::touch(uint64_t id, session& s) {
  by_deadline_.erase({s.last_active_ms + s.timeout_ms, id});
  s.last_active_ms = time_ms_;
  by_deadline_.emplace(s.last_active_ms + s.timeout_ms, id);
}

pb::SessionResult session_table::apply(uint64_t index, const std::string& data,
                                       const std::function<std::string(const std::string&)>& run) {
  pb::SessionEntry e;
  if (!e.ParseFromString(data)) // the leader encoded it: never seen, but never guess
    return refuse(errc::invalid_request, "malformed session entry");
  time_ms_ = std::max(time_ms_, e.time_ms());
  expire(time_ms_);
  if (!e.has_tag()) { // open a session: its id is this entry's index
    if (sessions_.size() >= max_sessions) {
      auto oldest = *by_deadline_.begin();
      sessions_.erase(oldest.second);
      by_deadline_.erase(by_deadline_.begin());
      ++expired_;
    }
    auto& s = sessions_[index];
    s.timeout_ms = e.timeout_ms();
    s.last_active_ms = time_ms_;
    by_deadline_.emplace(s.last_active_ms + s.timeout_ms, index);
    pb::SessionResult r;
    r.set_index(index);
    return r;
  }
  auto& tag = e.tag();
  auto i = sessions_.find(tag.id());
  if (i == sessions_.end())
    return refuse(errc::session_expired,
                  "session " + std::to_string(tag.id()) + " is unknown or expired");
  auto& s = i->second;
  touch(tag.id(), s);
  if (tag.acked_below() > s.acked_below) {
    s.acked_below = tag.acked_below();
    s.answers.erase(s.answers.begin(), s.answers.lower_bound(s.acked_below));
  }
  if (auto a = s.answers.find(tag.sequence());
      a != s.answers.end() && !CAFRAFT_CANARY("session_duplicate_applied")) {
    ++duplicates_;
    pb::SessionResult r;
    r.set_index(a->second.first);
    r.set_result(a->second.second);
    r.set_duplicate(true);
    return r;
  }
  if (tag.sequence() == 0 || tag.sequence() < s.acked_below)
    return refuse(errc::invalid_request, "sequence " + std::to_string(tag.sequence()) +
                                             " of session " + std::to_string(tag.id()) +
                                             " was acknowledged by its client already");
  pb::SessionResult r;
  r.set_index(index);
  r.set_result(run(e.command()));
  if (s.answers.size() >= max_answers) // the client never acknowledges: keep the newest
    s.answers.erase(s.answers.begin());
  s.answers.emplace(tag.sequence(), std::make_pair(index, r.result()));
  return r;
}

std::string session_table::encode() const {
  pb::SessionTable t;
  t.set_time_ms(time_ms_);
  for (auto& [id, s] : sessions_) {
    auto* out = t.add_sessions();
    out->set_id(id);
    out->set_timeout_ms(s.timeout_ms);
    out->set_last_active_ms(s.last_active_ms);
    out->set_acked_below(s.acked_below);
    for (auto& [seq, answer] : s.answers) {
      auto* a = out->add_answers();
      a->set_sequence(seq);
      a->set_index(answer.first);
      a->set_result(answer.second);
    }
  }
  return t.SerializeAsString();
}

bool session_table::decode(const std::string& bytes) {
  pb::SessionTable t;
  if (!t.ParseFromString(bytes))
    return false;
  std::map<uint64_t, session> sessions;
  std::set<std::pair<uint64_t, uint64_t>> by_deadline;
  for (auto& in : t.sessions()) {
    auto& s = sessions[in.id()];
    s.timeout_ms = in.timeout_ms();
    s.last_active_ms = in.last_active_ms();
    s.acked_below = in.acked_below();
    for (auto& a : in.answers())
      s.answers.emplace(a.sequence(), std::make_pair(a.index(), a.result()));
    by_deadline.emplace(s.last_active_ms + s.timeout_ms, in.id());
  }
  time_ms_ = t.time_ms();
  sessions_ = std::move(sessions);
  by_deadline_ = std::move(by_deadline);
  return true;
}

} // namespace cafraft
