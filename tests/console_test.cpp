// The command parser of cafraft-console.
#include <gtest/gtest.h>

#include "apps/console_parse.hpp"

namespace {

using cafraft::console::parse;
using words = std::vector<std::string>;

TEST(ConsoleParser, SplitsCommandsAndWords) {
  auto p = parse("members; inspect n1/leader ;;  actors  n2 ");
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 3u);
  EXPECT_EQ(p.commands[0], (words{"members"}));
  EXPECT_EQ(p.commands[1], (words{"inspect", "n1/leader"}));
  EXPECT_EQ(p.commands[2], (words{"actors", "n2"}));
  EXPECT_TRUE(parse("").commands.empty());
  EXPECT_TRUE(parse(" ; ;").commands.empty());
}

TEST(ConsoleParser, QuotesKeepSpacesAndSemicolons) {
  auto p = parse(R"(put "a key" 'v; 1'; put k "say \"hi\"" ""; x)");
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.commands.size(), 3u);
  EXPECT_EQ(p.commands[0], (words{"put", "a key", "v; 1"}));
  EXPECT_EQ(p.commands[1], (words{"put", "k", "say \"hi\"", ""}));
  EXPECT_EQ(p.commands[2], (words{"x"}));
}

TEST(ConsoleParser, UnterminatedQuoteIsAnError) {
  auto p = parse("inspect \"n1/leader");
  EXPECT_NE(p.error, "");
  EXPECT_TRUE(p.commands.empty());
  EXPECT_NE(parse("a 'b").error, "");
}

} // namespace
