// GitBackend over real repositories made in a temporary directory.
#include "handlers/git/git_backend.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>

#include "core/test_util.h"

namespace sluice {
namespace {

class GitBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = dir_.Sub("repo");
    Sh("git init -q -b main " + repo_);
  }
  void Sh(const std::string& cmd) {
    std::string env =
        "GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@x GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@x ";
    ASSERT_EQ(std::system((env + cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
  }
  // Commits `file` with `content` at `date` (git's date syntax).
  void Commit(const std::string& file, const std::string& content, const std::string& date,
              const std::string& msg) {
    testing::WriteAll(repo_ + "/" + file, content);
    Sh("cd " + repo_ + " && git add " + file + " && GIT_COMMITTER_DATE='" + date +
       "' GIT_AUTHOR_DATE='" + date + "' git commit -q -m '" + msg + "'");
  }
  Result<std::vector<TaskItem>> Fetch(const std::string& extra_args) {
    GitBackend git(dir_.Sub("archive"), 60);
    FetchRequest r;
    r.args = "{\"uri\":\"" + repo_ + "\"" + extra_args + "}";
    r.log = [](const std::string&) {};
    return git.Fetch(r);
  }

  testing::TempDir dir_;
  std::string repo_;
};

TEST_F(GitBackendTest, CommitsWithParentsFilesAndDatesFilteredByTheCursor) {
  Commit("a.txt", "1\n2\n", "2024-01-01T00:00:00Z", "one");
  testing::WriteAll(repo_ + "/bin.dat", std::string("\0\1\2\3", 4));
  Commit("a.txt", "1\n", "2024-02-01T00:00:00Z", "two");
  Sh("cd " + repo_ +
     " && git add bin.dat && GIT_COMMITTER_DATE=2024-03-01T00:00:00Z git commit -q -m bin");
  Sh("cd " + repo_ + " && git checkout -q -b side HEAD~1");
  Commit("s.txt", "s\n", "2024-04-01T00:00:00Z", "side");
  Sh("cd " + repo_ +
     " && git checkout -q main && GIT_COMMITTER_DATE=2024-05-01T00:00:00Z git merge -q --no-ff -m "
     "merge side");

  auto all = Fetch("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 5u);
  rapidjson::Document d;
  d.Parse(all->back().data.c_str());
  EXPECT_STREQ(d["data"]["message"].GetString(), "merge");
  EXPECT_EQ(d["data"]["parents"].Size(), 2u);
  for (const TaskItem& item : *all) {
    rapidjson::Document i;
    i.Parse(item.data.c_str());
    std::string msg = i["data"]["message"].GetString();
    if (msg == "two") {
      EXPECT_EQ(i["data"]["files"][0]["added"].GetInt(), 0);
      EXPECT_EQ(i["data"]["files"][0]["removed"].GetInt(), 1);
    }
    if (msg == "bin") {
      EXPECT_TRUE(i["data"]["files"][0]["added"].IsNull());
    }
  }
  // From a cursor (inclusive) and up to a date (exclusive), on one branch.
  auto some =
      Fetch(",\"from_date\":\"2024-02-01\",\"to_date\":\"2024-05-01\",\"branches\":[\"main\"]");
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  std::vector<std::string> msgs;
  for (const TaskItem& item : *some) {
    rapidjson::Document i;
    i.Parse(item.data.c_str());
    msgs.push_back(i["data"]["message"].GetString());
  }
  EXPECT_EQ(msgs, (std::vector<std::string>{"two", "bin", "side"}));  // side: merged in
  // The same commit has the same uuid on every run.
  EXPECT_EQ(Fetch("")->front().uuid, all->front().uuid);
}

TEST_F(GitBackendTest, BadArgumentsAndOriginsAreRefusedWithAReason) {
  GitBackend git(dir_.Sub("archive"), 60);
  EXPECT_EQ(git.Validate("{}").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"--upload-pack=touch /tmp/x"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","from_date":"yesterday"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","colour":"red"})").code(), Code::kInvalidArgument);
  EXPECT_TRUE(git.Validate(R"({"uri":"x","gitpath":"/tmp/y","latest_items":true})").ok());
  FetchRequest r;
  r.args = R"({"uri":"ext::sh -c touch% /tmp/pwned"})";
  r.log = [](const std::string&) {};
  auto ext = git.Fetch(r);
  EXPECT_FALSE(ext.ok());
  r.args = "{\"uri\":\"" + dir_.Sub("missing") + "\"}";
  auto missing = git.Fetch(r);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("git clone failed"), std::string::npos);
  r.from_archive = true;
  EXPECT_EQ(git.Fetch(r).status().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace sluice
