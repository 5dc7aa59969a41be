#include "apps/dashboard_model.hpp"

#include <algorithm>
#include <set>

namespace cafraft {

namespace {

using json = nlohmann::json;

const pb::Inspection* find_kind(const member_sample& m, const std::string& kind) {
  for (auto& i : m.inspected)
    if (i.kind() == kind)
      return &i;
  return nullptr;
}

uint64_t number(const pb::Inspection* i, const std::string& key) {
  if (i == nullptr)
    return 0;
  auto f = i->fields().find(key);
  if (f == i->fields().end())
    return 0;
  try {
    return std::stoull(f->second);
  } catch (...) {
    return 0;
  }
}

/// The leader of a sample: the reachable member that says it leads, in the highest term.
const member_sample* leader_of(const cluster_sample& s) {
  const member_sample* best = nullptr;
  for (auto& m : s.members)
    if (m.reachable && m.status.role() == "leader" &&
        (best == nullptr || m.status.term() > best->status.term()))
      best = &m;
  return best;
}

uint64_t term_of(const cluster_sample& s) {
  uint64_t t = 0;
  for (auto& m : s.members)
    if (m.reachable)
      t = std::max(t, m.status.term());
  return t;
}

std::map<std::string, bool> voters(const cluster_sample& s) {
  std::map<std::string, bool> out;
  for (auto& m : s.members)
    out[m.member.id()] = !m.member.learner();
  return out;
}

json actors_json(const member_sample& m) {
  std::map<std::string, const pb::Inspection*> by_name;
  for (auto& i : m.inspected)
    by_name[i.name()] = &i;
  json out = json::array();
  for (auto& a : m.actors) {
    json j{{"name", a.name()}, {"kind", a.kind()}, {"parent", a.parent()}};
    if (auto i = by_name.find(a.name()); i != by_name.end()) {
      j["mailbox"] = i->second->mailbox();
      j["handled"] = i->second->handled();
      j["rate_1s"] = i->second->rate_1s();
      j["rate_10s"] = i->second->rate_10s();
    }
    out.push_back(std::move(j));
  }
  return out;
}

} // namespace

dashboard_model::dashboard_model(size_t points, size_t events)
    : max_points_(points), max_events_(events) {}

void dashboard_model::event(int64_t t, const std::string& kind, std::string text) {
  events_.push_back(json{{"t", t}, {"kind", kind}, {"text", std::move(text)}});
  while (events_.size() > max_events_)
    events_.pop_front();
}

void dashboard_model::add(cluster_sample s) {
  auto t = s.unix_ms;
  auto* leader = leader_of(s);
  auto term = term_of(s);
  std::string leader_id = leader ? leader->member.id() : std::string{};

  // The events: what changed since the sample before.
  if (!last_) {
    event(t, "watch",
          "the dashboard of " + s.served_by + " starts watching " +
              std::to_string(s.members.size()) + " members");
  }
  // A new leader, a new term, or none: one event (nothing while it stays as it was).
  auto key = leader ? leader_id + " leads term " + std::to_string(leader->status.term())
                    : "no leader (term " + std::to_string(term) + ")";
  if (key != leader_key_) {
    event(t, "leader", key);
    leader_key_ = key;
  }
  if (last_) {
    auto before = voters(*last_);
    auto now = voters(s);
    for (auto& [id, voter] : now) {
      auto b = before.find(id);
      if (b == before.end())
        event(t, "membership", id + " joined as a " + (voter ? "voter" : "learner"));
      else if (voter && !b->second)
        event(t, "membership", id + " became a voter");
    }
    for (auto& [id, voter] : before)
      if (now.count(id) == 0)
        event(t, "membership", id + " left the cluster");
    for (auto& m : s.members)
      for (auto& p : last_->members)
        if (p.member.id() == m.member.id() && p.reachable != m.reachable)
          event(t, "health",
                m.reachable ? m.member.id() + " is reachable again"
                            : m.member.id() + " lost: " + m.error);
  } else {
    for (auto& m : s.members)
      if (!m.reachable)
        event(t, "health", m.member.id() + " lost: " + m.error);
  }

  // The chart point: rates from the counters' growth since the sample before.
  json point{{"t", t}, {"writes_per_s", nullptr}, {"commit_ms", nullptr}, {"fsync_ms", json{}}};
  counters next;
  next.leader = leader_id;
  if (leader) {
    auto* li = find_kind(*leader, "leader");
    next.answered = number(li, "writes_answered");
    next.answer_us = number(li, "write_answer_us_sum");
  }
  for (auto& m : s.members)
    if (m.reachable)
      if (auto* si = find_kind(m, "storage"))
        next.fsync[m.member.id()] = {number(si, "group_commits"), number(si, "sum_write_us")};
  if (counters_ && last_ && t > last_->unix_ms) {
    double dt = static_cast<double>(t - last_->unix_ms) / 1000.0;
    if (leader && counters_->leader == next.leader && next.answered >= counters_->answered) {
      auto n = next.answered - counters_->answered;
      point["writes_per_s"] = static_cast<double>(n) / dt;
      if (n > 0)
        point["commit_ms"] = static_cast<double>(next.answer_us - counters_->answer_us) /
                             static_cast<double>(n) / 1000.0;
    }
    for (auto& [id, now] : next.fsync) {
      auto p = counters_->fsync.find(id);
      if (p == counters_->fsync.end() || now.first <= p->second.first)
        continue;
      point["fsync_ms"][id] = static_cast<double>(now.second - p->second.second) /
                              static_cast<double>(now.first - p->second.first) / 1000.0;
    }
  }
  counters_ = std::move(next);
  points_.push_back(std::move(point));
  while (points_.size() > max_points_)
    points_.pop_front();

  // The cluster as it is now.
  uint64_t leader_commit = leader ? leader->status.commit_index() : 0;
  json members = json::array();
  for (auto& m : s.members) {
    json j{{"id", m.member.id()},
           {"address", m.member.address()},
           {"voter", !m.member.learner()},
           {"reachable", m.reachable}};
    if (!m.reachable) {
      j["error"] = m.error;
      j["health"] = "unreachable";
    } else {
      auto& st = m.status;
      auto lag = leader_commit > st.applied_index() ? leader_commit - st.applied_index() : 0;
      j["role"] = st.role();
      j["term"] = st.term();
      j["leader"] = st.leader_id();
      j["commit_index"] = st.commit_index();
      j["applied_index"] = st.applied_index();
      j["last_log_index"] = st.last_log_index();
      j["lag"] = lag;
      j["feature_level"] = st.feature_level();
      j["cluster_level"] = st.cluster_level();
      j["health"] = st.leader_id().empty()   ? "no leader"
                    : lag >= lagging_entries ? "lagging"
                                             : "healthy";
      if (auto* si = find_kind(m, "storage"))
        j["last_fsync_us"] = number(si, "last_write_us");
    }
    j["actors"] = actors_json(m);
    members.push_back(std::move(j));
  }
  cluster_ = json{{"served_by", s.served_by},
                  {"t", t},
                  {"leader", leader_id},
                  {"term", term},
                  {"members", members}};
  last_ = std::move(s);
}

nlohmann::json dashboard_model::cluster() const {
  return cluster_;
}

nlohmann::json dashboard_model::history() const {
  json points = json::array();
  for (auto& p : points_)
    points.push_back(p);
  json events = json::array();
  for (auto& e : events_)
    events.push_back(e);
  return json{{"points", points}, {"events", events}};
}

} // namespace cafraft
