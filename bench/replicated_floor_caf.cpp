// cafraft-floor --caf: the same replicated write as bench/replicated_floor.cpp, with each member
// a CAF actor in its own actor system, talking over CAF 0.17's middleman with the settings
// cafraft-node runs (the sharing scheduler, one worker thread, deserializing in the I/O thread).
// The members write and fdatasync inside their actor: no storage actor, no Raft, nothing but
// CAF's messaging between the steps. The difference to the plain-TCP run is what CAF's
// networking costs a write; the difference to cafraft-bench's W1 is what cafraft adds.
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/floor.hpp"

namespace cafraft::floor {
namespace {

using append_atom = caf::atom_constant<caf::atom("fl_append")>;
using put_atom = caf::atom_constant<caf::atom("fl_put")>;

struct member_config : caf::actor_system_config {
  member_config() {
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", size_t{1});
    set("middleman.workers", size_t{0});
    load<caf::io::middleman>();
  }
};

/// A pipe from a member to the client: the member writes the port it published on.
struct port_pipe {
  int fd[2] = {-1, -1};
  port_pipe() {
    if (::pipe(fd) != 0)
      fail("pipe");
  }
};

/// Publishes `member` on 127.0.0.1, tells the client the port, and keeps the process (and its
/// actor system) up until the client closes `control`.
void serve(caf::actor_system& sys, const caf::actor& member, int port_out, int control) {
  auto port = sys.middleman().publish(member, 0, "127.0.0.1");
  if (!port) {
    std::fprintf(stderr, "cafraft-floor: publish: %s\n", sys.render(port.error()).c_str());
    fail_run();
  }
  uint16_t p = *port;
  write_all(port_out, &p, sizeof p);
  char byte = 0;
  while (::read(control, &byte, 1) > 0) {
  }
  caf::anon_send_exit(member, caf::exit_reason::user_shutdown);
}

caf::actor connect(caf::actor_system& sys, uint16_t port) {
  auto h = sys.middleman().remote_actor("127.0.0.1", port);
  if (!h) {
    std::fprintf(stderr, "cafraft-floor: remote_actor: %s\n", sys.render(h.error()).c_str());
    fail_run();
  }
  return *h;
}

/// An entry as the plain-TCP members log it: the index, then the value.
void append_entry(log_file& log, std::string& buf, uint64_t index, const std::string& value) {
  buf.assign(reinterpret_cast<const char*>(&index), sizeof index);
  buf += value;
  log.append(buf.data(), buf.size());
}

void follower_process(const options& opts, const std::string& path, int port_out, int control) {
  member_config cfg;
  caf::actor_system sys{cfg};
  auto log = std::make_shared<log_file>(path, opts.memory);
  auto follower = sys.spawn([log](caf::event_based_actor*) -> caf::behavior {
    auto buf = std::make_shared<std::string>();
    return {[log, buf](append_atom, uint64_t index, const std::string& value) {
      append_entry(*log, *buf, index, value);
      return index;
    }};
  });
  serve(sys, follower, port_out, control);
}

struct leader_state {
  std::vector<caf::actor> followers;
  std::shared_ptr<log_file> log;
  std::string buf;
  uint64_t last = 0;
  std::unordered_map<uint64_t, caf::response_promise> waiting; // answered at the first ack
};

caf::behavior leader_actor(caf::stateful_actor<leader_state>* self,
                           std::vector<caf::actor> followers, std::shared_ptr<log_file> log) {
  self->state.followers = std::move(followers);
  self->state.log = std::move(log);
  return {[self](put_atom, const std::string& value) {
    auto& st = self->state;
    auto index = ++st.last;
    auto rp = self->make_response_promise();
    st.waiting.emplace(index, rp);
    for (auto& f : st.followers)
      self->request(f, caf::infinite, append_atom::value, index, value)
          .then([self](uint64_t acked) {
            auto i = self->state.waiting.find(acked);
            if (i != self->state.waiting.end()) {
              i->second.deliver(acked);
              self->state.waiting.erase(i);
            }
          });
    // Sent first, written second, as cafraft's leader does; durable before any ack is handled.
    append_entry(*st.log, st.buf, index, value);
    return rp;
  }};
}

void leader_process(const options& opts, std::vector<uint16_t> follower_ports, int port_out,
                    int control) {
  member_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> followers;
  for (auto port : follower_ports)
    followers.push_back(connect(sys, port));
  auto log = std::make_shared<log_file>(opts.dir + "/leader.log", opts.memory);
  auto leader = sys.spawn(leader_actor, std::move(followers), log);
  serve(sys, leader, port_out, control);
}

struct client_state {
  const options* opts = nullptr;
  result* out = nullptr;
  std::string value;
  long done = 0;
  std::chrono::steady_clock::time_point start;
};

void put_next(caf::stateful_actor<client_state>* self, const caf::actor& leader) {
  using clock = std::chrono::steady_clock;
  auto& st = self->state;
  if (st.done == st.opts->warmup)
    st.start = clock::now();
  if (st.done == st.opts->warmup + st.opts->writes) {
    st.out->seconds = std::chrono::duration<double>(clock::now() - st.start).count();
    self->quit();
    return;
  }
  auto t0 = clock::now();
  self->request(leader, caf::infinite, put_atom::value, st.value).then([=](uint64_t) {
    if (self->state.done++ >= self->state.opts->warmup)
      self->state.out->latency_us.push_back(
          std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    put_next(self, leader);
  });
}

/// Reads the port a member published on; a member that failed first closes the pipe.
uint16_t read_port(int fd) {
  uint16_t port = 0;
  if (!read_all(fd, &port, sizeof port))
    fail_closed("member's port pipe");
  return port;
}

} // namespace

result run_caf(const options& opts) {
  // Members start before the client's actor system: a process forks before it has threads.
  int control[2];
  if (::pipe(control) != 0)
    fail("pipe");
  std::vector<uint16_t> follower_ports;
  for (int i = 0; i < 2; ++i) {
    port_pipe pp;
    fork_member([&] {
      ::close(control[1]);
      follower_process(opts, opts.dir + "/follower" + std::to_string(i) + ".log", pp.fd[1],
                       control[0]);
    });
    ::close(pp.fd[1]);
    follower_ports.push_back(read_port(pp.fd[0]));
    ::close(pp.fd[0]);
  }
  port_pipe pp;
  fork_member([&] {
    ::close(control[1]);
    leader_process(opts, follower_ports, pp.fd[1], control[0]);
  });
  ::close(pp.fd[1]);
  auto leader_port = read_port(pp.fd[0]);
  ::close(pp.fd[0]);
  ::close(control[0]);

  result r;
  r.latency_us.reserve(static_cast<size_t>(opts.writes));
  {
    member_config cfg;
    caf::actor_system sys{cfg};
    auto leader = connect(sys, leader_port);
    sys.spawn([&](caf::stateful_actor<client_state>* self) {
      self->state.opts = &opts;
      self->state.out = &r;
      self->state.value.assign(static_cast<size_t>(opts.value_size), 'v');
      put_next(self, leader);
    });
    sys.await_all_actors_done();
  }
  ::close(control[1]); // the members shut down
  return r;
}

} // namespace cafraft::floor
