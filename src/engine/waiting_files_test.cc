// WaitingFiles: oldest first, each name once, removals, and many names in little memory.
#include "engine/waiting_files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace sluice {
namespace {

TEST(WaitingFilesTest, GivesNamesBackOldestFirstThenByName) {
  WaitingFiles w;
  EXPECT_TRUE(w.Add(30, "c.json"));
  EXPECT_TRUE(w.Add(10, "b.json"));
  EXPECT_TRUE(w.Add(10, "a.json"));
  EXPECT_TRUE(w.Add(20, "d.json"));
  EXPECT_FALSE(w.Add(5, "c.json"));  // already waiting: its age stays
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(w.OldestMtime(), 10);
  EXPECT_EQ(w.TakeOldest(3), (std::vector<std::string>{"a.json", "b.json", "d.json"}));
  EXPECT_FALSE(w.Contains("a.json"));
  EXPECT_TRUE(w.Contains("c.json"));
  EXPECT_EQ(w.TakeOldest(10), (std::vector<std::string>{"c.json"}));
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.OldestMtime(), 0);
}

TEST(WaitingFilesTest, ARemovedNameIsSkippedAndMayComeBack) {
  WaitingFiles w;
  w.Add(1, "x.json");
  w.Add(2, "y.json");
  EXPECT_TRUE(w.Remove("x.json"));
  EXPECT_FALSE(w.Remove("x.json"));
  EXPECT_FALSE(w.Contains("x.json"));
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.OldestMtime(), 2);
  EXPECT_TRUE(w.Add(3, "x.json"));  // back, with its new age
  EXPECT_EQ(w.TakeOldest(5), (std::vector<std::string>{"y.json", "x.json"}));
}

TEST(WaitingFilesTest, ManyNamesInAnyOrderComeOutSortedThroughCompactions) {
  WaitingFiles w;
  std::mt19937 rng(7);
  std::vector<std::pair<int64_t, std::string>> all;
  for (int i = 0; i < 200000; ++i) {
    all.emplace_back(rng() % 1000, "f" + std::to_string(i) + ".json");
    ASSERT_TRUE(w.Add(all.back().first, all.back().second));
  }
  // Remove every third, take some, add more: dead entries pile up and are compacted away.
  for (int i = 0; i < 200000; i += 3) ASSERT_TRUE(w.Remove(all[i].second));
  std::vector<std::pair<int64_t, std::string>> expect;
  for (int i = 0; i < 200000; ++i) {
    if (i % 3 != 0) expect.push_back(all[i]);
  }
  for (int i = 200000; i < 250000; ++i) {
    expect.emplace_back(rng() % 1000, "f" + std::to_string(i) + ".json");
    ASSERT_TRUE(w.Add(expect.back().first, expect.back().second));
  }
  std::sort(expect.begin(), expect.end());
  ASSERT_EQ(w.size(), expect.size());
  std::vector<std::string> got;
  while (!w.empty()) {
    for (std::string& n : w.TakeOldest(7001)) got.push_back(std::move(n));
  }
  ASSERT_EQ(got.size(), expect.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expect[i].second) << i;
}

TEST(WaitingFilesTest, RefusesNamesItCannotHold) {
  WaitingFiles w;
  EXPECT_FALSE(w.Add(1, ""));
  EXPECT_FALSE(w.Add(1, std::string(70000, 'a')));
  EXPECT_TRUE(w.empty());
}

}  // namespace
}  // namespace sluice
