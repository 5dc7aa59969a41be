#include "sim_clients.hpp"

#include <optional>
#include <sstream>

#include <cafraft/messages/errors.hpp>

namespace cafraft::test {

namespace {

constexpr auto request_timeout = std::chrono::milliseconds{1000};

} // namespace

struct sim_clients::shared {
  struct client_state {
    bool busy = false;
    std::string preferred;                   // the leader it was last told of
    std::optional<lin::operation> retry;     // the next operation, when already chosen
    std::map<std::string, std::string> seen; // key -> the last value it read or wrote
    uint64_t next_value = 0;
    uint64_t session = 0;        // sessions: its id, 0 while none is open
    uint64_t written = 0;        // the highest index a write of this client was acknowledged at
    uint64_t seq = 0;            // the last sequence number given out
    std::optional<size_t> again; // sessions: the op (by index) to send again, same sequence
    int attempts = 0;            // of that op
  };
  uint64_t retries = 0, duplicates = 0, follower_reads = 0, lease_reads = 0, stale_reads = 0;
  std::vector<std::string> violations; // stale reads that broke their min_index
  std::vector<client_state> clients;
  std::vector<lin::operation> ops;
  std::vector<bool> finished; // per op: completed (else still waiting: unknown)
  int64_t clock = 0;
};

sim_clients::sim_clients(caf::actor_system& sys, uint64_t seed, size_t clients, size_t keys)
    : st_(std::make_shared<shared>()), sys_(sys), rng_(seed * 2654435761u + 17), keys_(keys) {
  st_->clients.resize(clients);
}

void sim_clients::start(cluster& c, size_t ci, const std::string& to) {
  auto& cl = st_->clients[ci];
  std::vector<std::string> up;
  for (auto& [id, ignored] : c.nodes)
    up.push_back(id);
  if (up.empty())
    return;
  std::uniform_real_distribution<double> coin{0.0, 1.0};
  std::string target = up[rng_() % up.size()];
  if (!to.empty())
    target = to;
  else if (!cl.preferred.empty() && c.nodes.count(cl.preferred) && coin(rng_) < 0.7)
    target = cl.preferred;
  auto st = st_;
  auto node = c.nodes.at(target);
  if (sessions_ && cl.session == 0 &&
      !cl.retry) { // open one first (not an operation of the history)
    cl.busy = true;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(node, request_timeout, pb::OpenSessionRequest{})
          .then(
              [=](const pb::WriteResponse& w) {
                st->clients[ci].session = w.index();
                st->clients[ci].seq = 0;
                st->clients[ci].busy = false;
              },
              [=](caf::error& e) {
                std::string id, address;
                st->clients[ci].preferred = leader_hint(e, id, address) ? id : std::string{};
                st->clients[ci].busy = false;
              });
    });
    return;
  }
  lin::operation op;
  op.client = static_cast<int>(ci);
  bool resend = false;
  size_t index = st_->ops.size();
  if (cl.again) { // the same operation, its next attempt
    index = *cl.again;
    cl.again.reset();
    op = st_->ops[index];
    resend = true;
    ++cl.attempts;
    ++st_->retries;
  } else if (cl.retry) {
    op = *cl.retry;
    cl.retry.reset();
  } else {
    op.key = "k" + std::to_string(rng_() % keys_);
    auto r = coin(rng_);
    auto fresh = "c" + std::to_string(ci) + "-" + std::to_string(++cl.next_value);
    if (r < 0.4) {
      op.kind = lin::op_kind::write;
      op.value = fresh;
    } else if (r < 0.8) {
      op.kind = lin::op_kind::read;
    } else {
      op.kind = lin::op_kind::cas;
      op.value = fresh;
      auto seen = cl.seen.find(op.key);
      if (seen != cl.seen.end() && coin(rng_) < 0.8)
        op.expected = seen->second;
      else if (coin(rng_) < 0.5)
        op.expected = "c" + std::to_string(rng_() % st_->clients.size()) + "-1";
    }
  }
  if (!resend) {
    op.invoke = ++st_->clock;
    op.result = lin::outcome::unknown;
    st_->ops.push_back(op);
    st_->finished.push_back(false);
    cl.attempts = 1;
    if (sessions_ && op.kind != lin::op_kind::read)
      ++cl.seq;
  }
  st_->finished[index] = false;
  cl.busy = true;
  std::optional<pb::SessionTag> tag;
  if (sessions_ && op.kind != lin::op_kind::read) {
    tag.emplace();
    tag->set_id(cl.session);
    tag->set_sequence(cl.seq);
    tag->set_acked_below(cl.seq); // one operation at a time
  }
  bool sessions = sessions_;
  // Every answer ends here: the outcome, the completion time, and what the client learned.
  auto done = [st, index, ci, sessions](lin::outcome result, std::optional<std::string> read_value,
                                        const caf::error* err) {
    auto& o = st->ops[index];
    auto& client = st->clients[ci];
    o.result = result;
    o.read_value = std::move(read_value);
    o.complete = ++st->clock;
    st->finished[index] = true;
    client.busy = false;
    if (result == lin::outcome::ok) {
      if (o.kind == lin::op_kind::read) {
        if (o.read_value)
          client.seen[o.key] = *o.read_value;
        else
          client.seen.erase(o.key);
      } else {
        client.seen[o.key] = o.value;
      }
    }
    std::string id, address;
    if (err && leader_hint(*err, id, address))
      client.preferred = id;
    else if (err)
      client.preferred.clear();
    if (err && err->category() == error_category &&
        err->code() == static_cast<uint8_t>(errc::session_expired))
      client.session = 0; // the next operation opens a new one
    if (sessions && o.kind != lin::op_kind::read) {
      // In a session an unknown write is sent again with its sequence number: it applies
      // once. A session_expired after an unknown attempt leaves it unknown.
      if (result == lin::outcome::unknown && client.session != 0 && client.attempts < 4)
        client.again = index;
      return;
    }
    // Half of the unknown writes and swaps are sent again (chosen by position, so that a
    // replay does the same).
    if (result == lin::outcome::unknown && o.kind != lin::op_kind::read && index % 2 == 0)
      client.retry = o;
  };
  // A definite cafraft error took no effect; anything else may have. In a session, an
  // attempt after an unknown one may have been preceded by an apply: still unknown.
  auto failed = [done, resend](const caf::error& e) {
    bool definite = e.category() == error_category && !is_indefinite(e) && !resend;
    done(definite ? lin::outcome::rejected : lin::outcome::unknown, std::nullopt, &e);
  };
  auto count = [st, ci](const pb::WriteResponse& w) {
    st->duplicates += w.duplicate();
    st->clients[ci].written = std::max(st->clients[ci].written, w.index());
  };
  auto read_failed = [done](const caf::error& e) {
    done(lin::outcome::rejected, std::nullopt, &e); // a read changes nothing
  };
  switch (op.kind) {
  case lin::op_kind::read: {
    pb::GetRequest req;
    req.set_key(op.key);
    auto dest = node;
    auto pick = read_policies_ ? coin(rng_) : 1.0;
    if (pick < 1.0 / 3) { // a follower read, at any node
      req.set_policy(pb::READ_FOLLOWER);
      dest = c.nodes.at(up[rng_() % up.size()]);
      ++st_->follower_reads;
    } else if (pick < 2.0 / 3) { // a lease read, answered by a leader while its lease holds
      req.set_policy(pb::READ_LEASE);
      ++st_->lease_reads;
    } else if (pick < 5.0 / 6) {
      // A stale read with the index of the client's last acknowledged write, at any node: not
      // linearizable (left out of the history), but it must come from a state that applied
      // that write (read-your-writes).
      auto min_index = cl.written;
      req.set_policy(pb::READ_STALE);
      req.set_min_index(min_index);
      dest = c.nodes.at(up[rng_() % up.size()]);
      ++st_->stale_reads;
      sys_.spawn([=](caf::event_based_actor* self) {
        self->request(dest, request_timeout, req)
            .then(
                [=](const pb::GetResponse& r) {
                  if (r.applied_index() < min_index)
                    st->violations.push_back(
                        "a stale read with min_index " + std::to_string(min_index) +
                        " answered from applied index " + std::to_string(r.applied_index()));
                  done(lin::outcome::rejected, std::nullopt, nullptr);
                },
                [=](caf::error& e) { read_failed(e); });
      });
      break;
    }
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(dest, request_timeout, req)
          .then(
              [=](const pb::GetResponse& r) {
                done(lin::outcome::ok,
                     r.found() ? std::optional<std::string>{r.value()} : std::nullopt, nullptr);
              },
              [=](caf::error& e) { read_failed(e); });
    });
    break;
  }
  case lin::op_kind::write: {
    pb::PutRequest req;
    req.set_key(op.key);
    req.set_value(op.value);
    if (tag)
      *req.mutable_session() = *tag;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(node, request_timeout, req)
          .then(
              [=](const pb::WriteResponse& w) {
                count(w);
                done(lin::outcome::ok, std::nullopt, nullptr);
              },
              [=](caf::error& e) { failed(e); });
    });
    break;
  }
  case lin::op_kind::cas: {
    pb::CasRequest req;
    req.set_key(op.key);
    req.set_value(op.value);
    if (op.expected)
      req.set_expected(*op.expected);
    else
      req.set_expect_absent(true);
    if (tag)
      *req.mutable_session() = *tag;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(node, request_timeout, req)
          .then(
              [=](const pb::WriteResponse& w) {
                count(w);
                pb::KvResult res;
                res.ParseFromString(w.result());
                done(res.compare_failed() ? lin::outcome::fail : lin::outcome::ok, std::nullopt,
                     nullptr);
              },
              [=](caf::error& e) { failed(e); });
    });
    break;
  }
  case lin::op_kind::append:
    break; // the KV store has no append
  }
}

void sim_clients::step(cluster& c, double rate) {
  std::uniform_real_distribution<double> coin{0.0, 1.0};
  for (size_t i = 0; i < st_->clients.size(); ++i)
    if (!st_->clients[i].busy && coin(rng_) < rate)
      start(c, i);
}

void sim_clients::final_reads(cluster& c, driver& d, const std::string& leader) {
  d.run_until([&] { return idle(); }, 2 * request_timeout);
  for (size_t k = 0; k < keys_; ++k)
    for (size_t i = 0; i < st_->clients.size(); ++i) {
      if (!c.nodes.count(leader) || st_->clients[i].busy)
        continue;
      st_->clients[i].again.reset(); // an unknown write stays unknown
      lin::operation op;
      op.client = static_cast<int>(i);
      op.kind = lin::op_kind::read;
      op.key = "k" + std::to_string(k);
      st_->clients[i].retry = op;
      start(c, i, leader);
      d.run_until([&] { return !st_->clients[i].busy; }, 2 * request_timeout);
    }
}

uint64_t sim_clients::session_retries() const {
  return st_->retries;
}

uint64_t sim_clients::session_duplicates() const {
  return st_->duplicates;
}

uint64_t sim_clients::follower_reads() const {
  return st_->follower_reads;
}

uint64_t sim_clients::lease_reads() const {
  return st_->lease_reads;
}

uint64_t sim_clients::stale_reads() const {
  return st_->stale_reads;
}

const std::vector<std::string>& sim_clients::violations() const {
  return st_->violations;
}

bool sim_clients::idle() const {
  for (auto& cl : st_->clients)
    if (cl.busy)
      return false;
  return true;
}

std::vector<lin::operation> sim_clients::history() const {
  return st_->ops;
}

uint64_t sim_clients::acknowledged() const {
  uint64_t n = 0;
  for (auto& o : st_->ops)
    n += o.kind != lin::op_kind::read && o.result == lin::outcome::ok;
  return n;
}

uint64_t sim_clients::count(lin::outcome out) const {
  uint64_t n = 0;
  for (auto& o : st_->ops)
    n += o.result == out;
  return n;
}

std::string sim_clients::check() const {
  lin::check_options opts;
  opts.timeout = std::chrono::seconds{20};
  auto res = lin::check(st_->ops, opts);
  if (res.answer == lin::verdict::linearizable)
    return {};
  std::ostringstream out;
  out << (res.answer == lin::verdict::timed_out ? "the linearizability check timed out"
                                                : "the client history is not linearizable")
      << " (key " << res.key << ", " << res.operations << " operations):\n"
      << res.explanation;
  return out.str();
}

} // namespace cafraft::test
