#include "actors/peer.hpp"

#include <caf/all.hpp>

#include "actors/guards.hpp"
#include "messages/api.hpp"

namespace cafraft {

namespace {

struct peer_state {
  std::string local_id;
  std::string peer_id;
  std::shared_ptr<spdlog::logger> log;
  caf::actor remote;
  uint64_t sent = 0;
  uint64_t dropped = 0;
  static inline const char* name = "cafraft.peer";
};

using peer_ptr = caf::stateful_actor<peer_state>*;

caf::behavior peer_impl(peer_ptr self, std::string local_id, std::string peer_id,
                        std::shared_ptr<spdlog::logger> log) {
  self->state.local_id = std::move(local_id);
  self->state.peer_id = std::move(peer_id);
  self->state.log = std::move(log);
  install_guards(self);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.remote && msg.source == st.remote.address()) {
      st.log->warn("{} lost the connection to {}: {}", st.local_id, st.peer_id, render(msg.reason));
      st.remote = nullptr;
    }
  });
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        auto& st = self->state;
        if (st.remote) {
          self->send(st.remote, x.move_content_to_message());
          ++st.sent;
        } else {
          ++st.dropped;
        }
        return caf::message{};
      });
  return {
      [self](peer_handle_atom, caf::actor& handle) {
        auto& st = self->state;
        if (st.remote == handle)
          return;
        if (st.remote)
          self->demonitor(st.remote.address());
        st.remote = std::move(handle);
        if (st.remote) {
          self->monitor(st.remote);
          st.log->info("{} reaches {} now", st.local_id, st.peer_id);
        }
      },
      [self](peer_stats_atom) {
        auto& st = self->state;
        return caf::make_message(st.sent, st.dropped, static_cast<bool>(st.remote));
      },
  };
}

} // namespace

caf::actor spawn_peer(caf::local_actor* node, std::string local_id, std::string peer_id,
                      std::shared_ptr<spdlog::logger> log) {
  return node->spawn<caf::linked>(peer_impl, std::move(local_id), std::move(peer_id),
                                  std::move(log));
}

} // namespace cafraft
