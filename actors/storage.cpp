#include "actors/storage.hpp"

#include <exception>

#include <caf/all.hpp>

#include "actors/guards.hpp"
#include "messages/api.hpp"
#include "messages/local.hpp"

namespace cafraft {

namespace {

struct storage_state {
  std::shared_ptr<log_storage> store;
  uint64_t last_index = 0;
  static inline const char* name = "cafraft.storage";
};

caf::behavior storage_impl(caf::stateful_actor<storage_state>* self,
                           std::shared_ptr<log_storage> store) {
  install_guards(self);
  self->state.store = std::move(store);
  return {
      [self](persist_atom, persist_batch& batch) -> caf::result<uint64_t> {
        auto& st = self->state;
        try {
          if (!batch.empty())
            st.store->write(batch);
        } catch (const std::exception& ex) {
          auto err = make_error(errc::storage_failed, ex.what());
          self->quit(err);
          return err;
        }
        if (batch.truncate_from > 0)
          st.last_index = batch.truncate_from - 1;
        if (!batch.entries.empty())
          st.last_index = batch.entries.back().index();
        return st.last_index;
      },
  };
}

} // namespace

caf::actor spawn_storage(caf::local_actor* node, std::shared_ptr<log_storage> store,
                         bool detached) {
  if (detached)
    return node->spawn<caf::linked + caf::detached>(storage_impl, std::move(store));
  return node->spawn<caf::linked>(storage_impl, std::move(store));
}

} // namespace cafraft
