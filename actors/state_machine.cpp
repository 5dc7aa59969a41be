#include "actors/state_machine.hpp"

#include <map>

#include <caf/all.hpp>

#include "actors/guards.hpp"
#include "messages/api.hpp"

namespace cafraft {

namespace {

struct waiting_query {
  std::string query;
  caf::response_promise rp;
};

struct sm_state {
  std::string node_id;
  std::shared_ptr<state_machine> sm;
  std::shared_ptr<step_observer> observer;
  uint64_t applied = 0;
  std::multimap<uint64_t, waiting_query> waiting; // by min_index
  static inline const char* name = "cafraft.state_machine";
};

using sm_ptr = caf::stateful_actor<sm_state>*;

void answer_waiting(sm_ptr self) {
  auto& st = self->state;
  while (!st.waiting.empty() && st.waiting.begin()->first <= st.applied) {
    auto q = std::move(st.waiting.begin()->second);
    st.waiting.erase(st.waiting.begin());
    q.rp.deliver(st.sm->query(q.query), st.applied);
  }
}

caf::behavior sm_impl(sm_ptr self, std::string node_id, std::shared_ptr<state_machine> sm,
                      std::shared_ptr<step_observer> observer) {
  install_guards(self);
  self->state.node_id = std::move(node_id);
  self->state.sm = std::move(sm);
  self->state.observer = std::move(observer);
  return {
      [self](apply_atom, const std::vector<pb::LogEntry>& entries) {
        auto& st = self->state;
        std::vector<std::string> results;
        results.reserve(entries.size());
        for (auto& e : entries) {
          if (e.index() <= st.applied) { // handed over twice across a role change
            results.emplace_back();
            continue;
          }
          if (e.index() != st.applied + 1) {
            // A gap would apply a different sequence than other nodes: stop the node.
            self->quit(make_error(errc::invalid_request, "apply gap: applied " +
                                                             std::to_string(st.applied) + ", got " +
                                                             std::to_string(e.index())));
            return results;
          }
          results.push_back(e.type() == pb::ENTRY_COMMAND ? st.sm->apply(e.index(), e.data())
                                                          : std::string{});
          st.applied = e.index();
          if (st.observer)
            st.observer->on_apply(st.node_id, e);
        }
        answer_waiting(self);
        return results;
      },
      [self](query_atom, uint64_t min_index, std::string& query) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (min_index <= st.applied)
          rp.deliver(st.sm->query(query), st.applied);
        else
          st.waiting.emplace(min_index, waiting_query{std::move(query), rp});
        return rp;
      },
  };
}

} // namespace

caf::actor spawn_state_machine(caf::local_actor* node, std::string node_id,
                               std::unique_ptr<state_machine> sm,
                               std::shared_ptr<step_observer> observer) {
  return node->spawn<caf::linked>(sm_impl, std::move(node_id),
                                  std::shared_ptr<state_machine>{std::move(sm)},
                                  std::move(observer));
}

} // namespace cafraft
