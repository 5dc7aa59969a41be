#include "apps/dashboard.hpp"

#include <caf/all.hpp>

#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/errors.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft {

namespace {

using namespace std::chrono_literals;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The page, its script and styles inline: nothing else may load (no network in the browser).
constexpr const char* page_policy = "default-src 'none'; script-src 'unsafe-inline'; "
                                    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

} // namespace

dashboard::dashboard(caf::actor_system& sys, caf::actor node, std::string id, tls_files tls)
    : sys_(sys), node_(std::move(node)), id_(std::move(id)), tls_(std::move(tls)) {
  // The sampler's own connections to the other members log as a client; their comings and
  // goings are the node's peers' news already.
  get_logger("cafraft-client")->set_level(spdlog::level::err);
  sampler_ = std::thread{[this] { run(); }};
}

dashboard::~dashboard() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_ = true;
  }
  wake_.notify_all();
  sampler_.join();
}

void dashboard::run() {
  remote_client client{sys_, {}, tls_};
  std::vector<pb::Member> members; // the last configuration this node told
  for (;;) {
    auto started = std::chrono::steady_clock::now();
    bool with_actors = unix_ms() < watched_until_ms_.load();
    // Asks one member: this node's own actors directly, the others over the network.
    auto ask = [&](const pb::Member& m, const auto& req, auto tag) {
      using resp = typename decltype(tag)::type;
      if (m.id() != id_)
        return client.ask<resp>(m.address(), req, 1000ms, 300ms);
      caf::scoped_actor self{sys_};
      caf::expected<resp> out{caf::error{}};
      self->request(node_, 1s, req)
          .receive([&](resp& r) { out = std::move(r); },
                   [&](caf::error& e) { out = std::move(e); });
      return out;
    };
    struct status_t {
      using type = pb::NodeStatus;
    };
    struct directory_t {
      using type = pb::ActorDirectory;
    };
    struct inspection_t {
      using type = pb::Inspection;
    };
    cluster_sample s;
    s.served_by = id_;
    pb::Member me;
    me.set_id(id_);
    auto mine = ask(me, status_atom::value, status_t{});
    if (mine) {
      members.assign(mine->members().begin(), mine->members().end());
    } else if (members.empty()) {
      members.push_back(me);
    }
    for (auto& m : members) {
      member_sample ms;
      ms.member = m;
      auto st = m.id() == id_ ? mine : ask(m, status_atom::value, status_t{});
      if (!st) {
        ms.error = render(st.error());
        s.members.push_back(std::move(ms));
        continue;
      }
      ms.reachable = true;
      ms.status = std::move(*st);
      std::vector<std::string> names{m.id() + "/storage"};
      if (ms.status.role() == "leader")
        names.push_back(m.id() + "/leader");
      if (with_actors) {
        if (auto dir = ask(m, directory_atom::value, directory_t{})) {
          names.clear();
          for (auto& a : dir->actors()) {
            ms.actors.push_back(a);
            names.push_back(a.name());
          }
        }
      }
      for (auto& name : names) {
        pb::InspectRequest req;
        req.set_name(name);
        if (auto i = ask(m, req, inspection_t{}))
          ms.inspected.push_back(std::move(*i));
      }
      s.members.push_back(std::move(ms));
    }
    s.unix_ms = unix_ms();
    std::unique_lock<std::mutex> guard{mtx_};
    model_.add(std::move(s));
    if (wake_.wait_until(guard, started + 1s, [this] { return stop_; }))
      return;
  }
}

void dashboard::serve(httplib::Server& srv) {
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", page_policy);
    res.set_header("Cache-Control", "no-store");
    res.set_content(dashboard_page, "text/html; charset=utf-8");
  });
  auto json = [this](httplib::Response& res, const nlohmann::json& j) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  };
  srv.Get("/v1/cluster", [this, json](const httplib::Request&, httplib::Response& res) {
    // The actor trees are sampled while somebody looks.
    watched_until_ms_ = unix_ms() + 30000;
    std::lock_guard<std::mutex> guard{mtx_};
    json(res, model_.cluster());
  });
  srv.Get("/v1/history", [this, json](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> guard{mtx_};
    json(res, model_.history());
  });
}

} // namespace cafraft
