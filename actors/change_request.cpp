#include <cafraft/actors/change_request.hpp>

#include <deque>
#include <map>

#include <caf/all.hpp>

#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft {

namespace {

// -- change_request (server side) ----------------------------------------------------------

struct queued_change {
  caf::message req;
  caf::response_promise rp;
};

struct change_request_state {
  caf::actor node;
  std::string node_id;
  size_t max_pending = 0;
  std::shared_ptr<spdlog::logger> log;
  std::deque<queued_change> queue; // the front one runs
  bool running = false;
  static inline const char* name = "cafraft.change_request";
};

using change_request_ptr = inspected<change_request_state>*;

// The leader answers when the change is committed, or fails it when it loses its leadership;
// this bounds the wait should neither happen (a leader cut off with check-quorum off).
constexpr auto change_deadline = std::chrono::seconds{60};

void run_next(change_request_ptr self) {
  auto& st = self->state;
  if (st.running || st.queue.empty())
    return;
  st.running = true;
  auto done = [self](caf::expected<pb::MembershipResponse> x) {
    auto& s = self->state;
    auto job = std::move(s.queue.front());
    s.queue.pop_front();
    s.running = false;
    if (x)
      job.rp.deliver(std::move(*x));
    else
      job.rp.deliver(std::move(x.error()));
    run_next(self);
  };
  auto msg =
      caf::message::concat(caf::make_message(config_change_atom::value), st.queue.front().req);
  self->request(st.node, change_deadline, std::move(msg))
      .then([done](pb::MembershipResponse& resp) mutable { done(std::move(resp)); },
            [done](caf::error& e) mutable { done(std::move(e)); });
}

caf::response_promise enqueue(change_request_ptr self, caf::message req) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (st.queue.size() > st.max_pending) { // the running one plus max_pending waiting
    rp.deliver(make_error(errc::overloaded, "membership change queue is full (" +
                                                std::to_string(st.max_pending) +
                                                " waiting): retry later"));
    return rp;
  }
  st.queue.push_back(queued_change{std::move(req), rp});
  run_next(self);
  return rp;
}

caf::behavior change_request_impl(change_request_ptr self, caf::actor node, std::string node_id,
                                  size_t max_pending, std::shared_ptr<spdlog::logger> log) {
  install_guards(self);
  auto& st = self->state;
  st.node = std::move(node);
  st.node_id = std::move(node_id);
  st.max_pending = max_pending;
  st.log = std::move(log);
  return {
      [self](pb::JoinRequest& req) {
        if (req.id().empty() || req.address().empty()) {
          auto rp = self->make_response_promise();
          rp.deliver(make_error(errc::invalid_request, "join needs an id and an address"));
          return rp;
        }
        if (req.id() == self->state.node_id) {
          auto rp = self->make_response_promise();
          rp.deliver(make_error(errc::self_join, "node " + req.id() +
                                                     " was asked to join the cluster through "
                                                     "itself"));
          return rp;
        }
        return enqueue(self, caf::make_message(std::move(req)));
      },
      [self](pb::LeaveRequest& req) {
        if (req.id().empty()) {
          auto rp = self->make_response_promise();
          rp.deliver(make_error(errc::invalid_request, "leave needs an id"));
          return rp;
        }
        return enqueue(self, caf::make_message(std::move(req)));
      },
      [self](inspect_atom) {
        auto& cs = self->state;
        std::string queue;
        for (auto& q : cs.queue)
          queue += (queue.empty() ? "" : "; ") + caf::to_string(q.req);
        return make_inspection(self, "change_request",
                               {{"queued", std::to_string(cs.queue.size())},
                                {"running", cs.running ? "true" : "false"},
                                {"queue", queue}});
      },
  };
}

// -- change client ------------------------------------------------------------------------

struct attempt {
  caf::message req;
  caf::response_promise rp;
  caf::actor_clock::time_point deadline;
  caf::actor target; // the leader a redirect named, else null (ask the next contact)
  size_t next_contact = 0;
  std::chrono::milliseconds backoff{0};
  size_t redirects = 0; // in a row, without a pause
  caf::error last;
};

struct change_client_state {
  change_client_options opts;
  uint64_t next_id = 0;
  std::map<uint64_t, attempt> attempts;
  static inline const char* name = "cafraft.change_client";
};

using change_client_ptr = caf::stateful_actor<change_client_state>*;

// Errors after which nothing will change by asking again.
bool final_error(const caf::error& e) {
  if (e.category() != error_category)
    return false;
  switch (static_cast<errc>(e.code())) {
  case errc::self_join:
  case errc::missing_data:
  case errc::duplicate_member:
  case errc::removed_member:
  case errc::invalid_request:
    return true;
  default:
    return false;
  }
}

void try_once(change_client_ptr self, uint64_t id);

void retry_later(change_client_ptr self, uint64_t id) {
  auto& a = self->state.attempts.at(id);
  auto& o = self->state.opts;
  a.target = nullptr;
  a.redirects = 0;
  a.backoff = a.backoff.count() == 0 ? o.backoff_min : std::min(a.backoff * 2, o.backoff_max);
  // Never past the deadline: the caller hears of the timeout when it is due.
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(a.deadline - self->clock().now());
  self->delayed_send(self, std::max(std::min(a.backoff, left), std::chrono::milliseconds{0}),
                     retry_atom::value, id);
}

void on_error(change_client_ptr self, uint64_t id, caf::error e) {
  auto& st = self->state;
  auto i = st.attempts.find(id);
  if (i == st.attempts.end())
    return;
  auto& a = i->second;
  if (final_error(e)) {
    a.rp.deliver(std::move(e));
    st.attempts.erase(i);
    return;
  }
  std::string leader, address;
  if (leader_hint(e, leader, address) && st.opts.resolve && a.redirects < 4) {
    if (auto h = st.opts.resolve(leader, address)) {
      a.last = std::move(e);
      a.target = h;
      ++a.redirects;
      try_once(self, id);
      return;
    }
  }
  a.last = std::move(e);
  retry_later(self, id);
}

void try_once(change_client_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.attempts.find(id);
  if (i == st.attempts.end())
    return;
  auto& a = i->second;
  auto now = self->clock().now();
  if (now >= a.deadline) {
    auto why = a.last ? "last answer: " + render(a.last) : std::string{"no answer"};
    a.rp.deliver(make_error(errc::timeout, "membership change not confirmed in time; " + why));
    st.attempts.erase(i);
    return;
  }
  auto target = a.target;
  if (!target)
    target = st.opts.contacts[a.next_contact++ % st.opts.contacts.size()];
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(a.deadline - now);
  auto wait = std::min(left, st.opts.attempt_timeout);
  self->request(target, wait, a.req)
      .then(
          [self, id](pb::MembershipResponse& resp) {
            auto& s = self->state;
            auto j = s.attempts.find(id);
            if (j == s.attempts.end())
              return;
            j->second.rp.deliver(std::move(resp));
            s.attempts.erase(j);
          },
          [self, id](caf::error& e) { on_error(self, id, std::move(e)); });
}

caf::response_promise start(change_client_ptr self, caf::message req) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (st.opts.contacts.empty()) {
    rp.deliver(make_error(errc::invalid_request, "no node to ask"));
    return rp;
  }
  auto id = st.next_id++;
  attempt a;
  a.req = std::move(req);
  a.rp = rp;
  a.deadline = self->clock().now() + st.opts.timeout;
  st.attempts.emplace(id, std::move(a));
  try_once(self, id);
  return rp;
}

caf::behavior change_client_impl(change_client_ptr self, change_client_options opts) {
  install_guards(self);
  self->state.opts = std::move(opts);
  return {
      [self](pb::JoinRequest& req) { return start(self, caf::make_message(std::move(req))); },
      [self](pb::LeaveRequest& req) { return start(self, caf::make_message(std::move(req))); },
      [self](retry_atom, uint64_t id) { try_once(self, id); },
  };
}

} // namespace

caf::actor spawn_change_client(caf::actor_system& sys, change_client_options opts) {
  return sys.spawn(change_client_impl, std::move(opts));
}

caf::actor spawn_change_client(caf::local_actor* parent, change_client_options opts) {
  return parent->spawn<caf::linked>(change_client_impl, std::move(opts));
}

caf::actor spawn_change_request(caf::local_actor* node, std::string node_id, size_t max_pending,
                                std::shared_ptr<spdlog::logger> log) {
  return node->spawn<caf::linked>(change_request_impl, caf::actor_cast<caf::actor>(node),
                                  std::move(node_id), max_pending, std::move(log));
}

} // namespace cafraft
