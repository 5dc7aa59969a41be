// Many groups in one process (docs/groups.md): the configuration of a group's replica, and
// groups spawned and stopped beside a process's own node, listed in its table and by
// groups_atom. (Groups between processes: tests/process_groups_test.cpp.)
#include <cstdlib>
#include <filesystem>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <cafraft/actors/group_table.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft {
namespace {

namespace fs = std::filesystem;

node_config process_config(const std::string& id, const std::string& dir) {
  node_config nc;
  nc.id = id;
  nc.members = {{"n1", "h1:1"}, {"n2", "h2:1"}, {"n3", "h3:1"}};
  nc.data_dir = dir;
  nc.logger_name = "groups-test";
  nc.groups = std::make_shared<group_table>();
  return nc;
}

TEST(GroupConfig, AGroupHasItsOwnDataAndLogAndTheProcesssMembersAndIdentity) {
  auto nc = process_config("n2", "/data/n2");
  nc.election_timeout_min = std::chrono::milliseconds{400};
  auto c = group_config(nc, 17);
  EXPECT_EQ(c.group, 17u);
  EXPECT_EQ(c.id, "n2");
  EXPECT_EQ(c.data_dir, "/data/n2/g17");
  EXPECT_EQ(c.logger_name, "groups-test.g17");
  EXPECT_EQ(c.members, nc.members);
  EXPECT_EQ(c.groups, nc.groups);
  EXPECT_EQ(c.election_timeout_min, nc.election_timeout_min);
  auto two = group_config(nc, 18, {{"n2", "h2:1"}, {"n3", "h3:1"}});
  ASSERT_EQ(two.members.size(), 2u);
  EXPECT_EQ(two.members[1].id, "n3");
}

TEST(GroupConfig, EachGroupPrefersOneProcessInTurnSoThatLeadersSpread) {
  // Group g prefers the (g mod 3)-th member by id: that replica keeps the process's priority,
  // the others campaign later.
  std::map<std::string, int> preferred;
  for (uint64_t g = 1; g <= 9; ++g) {
    for (auto id : {"n1", "n2", "n3"}) {
      auto c = group_config(process_config(id, "/d"), g);
      if (c.priority == 100)
        ++preferred[id];
      else
        EXPECT_LT(c.priority, 50) << id << " in group " << g;
    }
  }
  EXPECT_EQ(preferred, (std::map<std::string, int>{{"n1", 3}, {"n2", 3}, {"n3", 3}}));
  EXPECT_EQ(group_config(process_config("n2", "/d"), 1).priority, 100); // 1 mod 3: n2
  EXPECT_LT(group_config(process_config("n1", "/d"), 1).priority, 100);
}

struct groups_config : caf::actor_system_config {
  groups_config() { register_types(*this); }
};

class GroupsInOneProcess : public ::testing::Test {
protected:
  void SetUp() override {
    get_logger("groups-test")->set_level(spdlog::level::warn);
    char tmpl[] = "/tmp/cafraft-groups-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }

  /// Stops `node` and waits until it is down.
  void stop(const caf::actor& node) {
    caf::scoped_actor self{sys};
    self->monitor(node);
    self->send_exit(node, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {});
  }

  std::string dir;
  groups_config cfg;
  caf::actor_system sys{cfg};
};

TEST_F(GroupsInOneProcess, GroupsStartBesideTheProcesssNodeAreListedAndStop) {
  auto nc = process_config("n1", dir + "/n1");
  nc.members = {{"n1", "h1:1"}};
  auto own = spawn_node(sys, nc);
  ASSERT_TRUE(own) << render(own.error());
  auto g17 = spawn_group(sys, nc, 17);
  ASSERT_TRUE(g17) << render(g17.error());
  ASSERT_TRUE(nc.groups->find(17)) << "listed as soon as it is spawned";
  EXPECT_EQ(nc.groups->find(17)->node, *g17);

  caf::scoped_actor self{sys};
  pb::GroupList list;
  self->request(*own, std::chrono::seconds{5}, groups_atom::value)
      .receive([&](pb::GroupList& l) { list = std::move(l); },
               [](caf::error& e) { FAIL() << render(e); });
  ASSERT_EQ(list.groups_size(), 2);
  EXPECT_EQ(list.groups(0).group(), 0u);
  EXPECT_EQ(list.groups(1).group(), 17u);
  EXPECT_EQ(list.groups(1).id(), "n1");
  EXPECT_TRUE(fs::exists(dir + "/n1/g17/MANIFEST"));

  stop(*g17);
  EXPECT_FALSE(nc.groups->find(17)) << "a stopped group leaves the table";
  EXPECT_TRUE(nc.groups->find(0));
  stop(*own);
  EXPECT_EQ(nc.groups->size(), 0u);
}

TEST_F(GroupsInOneProcess, AGroupRestartsWithTheMembersItWasCreatedWith) {
  // Group 9 on n1 and n2 only, though the process's own group has three members: started again
  // without members (as a restart finds it), it has those two, not the process's three. Each
  // run is an actor system of its own, as a process is: its end waits for the group's storage,
  // which holds the data directory's lock.
  auto nc = process_config("n1", dir + "/n1");
  std::vector<member> two{{"n1", "h1:1"}, {"n2", "h2:1"}};
  auto members_after_start = [&](std::vector<member> given) {
    groups_config run_cfg;
    caf::actor_system run{run_cfg};
    auto g9 = spawn_group(run, nc, 9, std::move(given));
    EXPECT_TRUE(g9) << render(g9.error());
    if (!g9)
      return -1;
    caf::scoped_actor self{run};
    pb::NodeStatus st;
    self->request(*g9, std::chrono::seconds{5}, status_atom::value)
        .receive([&](pb::NodeStatus& x) { st = std::move(x); },
                 [](caf::error& e) { FAIL() << render(e); });
    self->send_exit(*g9, caf::exit_reason::user_shutdown);
    return st.members_size();
  };
  EXPECT_EQ(members_after_start(two), 2);
  EXPECT_EQ(members_after_start({}), 2) << "restarted with the process's members";
}

TEST_F(GroupsInOneProcess, SpawnGroupRefusesWhatCannotBeAGroupOfThisProcess) {
  auto nc = process_config("n1", dir + "/n1");
  auto zero = spawn_group(sys, nc, 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), static_cast<uint8_t>(errc::invalid_request));
  auto no_table = nc;
  no_table.groups = nullptr;
  EXPECT_FALSE(spawn_group(sys, no_table, 3));
  auto in_memory = nc;
  in_memory.data_dir.clear();
  in_memory.storage = std::make_shared<memory_storage>();
  EXPECT_FALSE(spawn_group(sys, in_memory, 3)) << "two groups would share one log";
  EXPECT_EQ(nc.groups->size(), 0u);
}

} // namespace
} // namespace cafraft
