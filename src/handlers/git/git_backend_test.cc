// GitBackend over real repositories made in a temporary directory.
#include "handlers/git/git_backend.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>

#include "core/json.h"
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

  // Feeds `stream` to git fast-import in the repository (exact bytes: any message, any name).
  void FastImport(const std::string& stream) {
    testing::WriteAll(dir_.Sub("import"), stream);
    Sh("git -C " + repo_ + " fast-import --quiet < " + dir_.Sub("import"));
  }
  // A fast-import commit on main, `when` unix seconds, by `name`, with `message`.
  static std::string ImportCommit(int64_t when, const std::string& name, const std::string& message,
                                  bool first) {
    std::string c = "commit refs/heads/main\ncommitter " + name + " <c@x> " + std::to_string(when) +
                    " +0000\ndata " + std::to_string(message.size()) + "\n" + message + "\n";
    if (first) c += "from refs/heads/main^0\n";
    std::string content = std::to_string(when) + "\n";
    return c + "M 644 inline f" + std::to_string(when % 7) + ".txt\ndata " +
           std::to_string(content.size()) + "\n" + content + "\n";
  }

  testing::TempDir dir_;
  std::string repo_;
};

// Whatever a commit holds (the bytes git log's fields were once split on, a terminal's escape
// sequences, text that is not UTF-8, lines that look like the parser's markers), each commit
// is one item of valid JSON with its message as written (invalid bytes as U+FFFD).
TEST_F(GitBackendTest, HostileCommitContentsAreItemsOfValidJson) {
  Commit("a.txt", "1\n", "2024-01-01T00:00:00Z", "plain");
  const std::string message = std::string("sep \x1e and \x1f; esc \x1b[31mred\x1b[0m; ") +
                              "caf\xe9; \x01\x02\r\n" + "sluice-commit-\nsluice-message-end-\n" +
                              "\n\nnot a numstat\t1\t2\n";
  FastImport(ImportCommit(1704153600, "Odd\x1fName\x1e", message, true) +
             ImportCommit(1704157200, "Next", "after it", false));
  auto all = Fetch("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  std::vector<std::string> messages;
  for (const TaskItem& item : *all) {
    rapidjson::Document d;
    ASSERT_TRUE(ParseJson(item.data, &d).ok()) << item.data;
    messages.push_back(JsonStr(d["data"]["message"]));
    if (messages.size() == 2) {
      EXPECT_EQ(JsonStr(d["data"]["Commit"]), "Odd\x1fName\x1e <c@x>");
      EXPECT_EQ(d["data"]["files"].Size(), 1u);
    }
  }
  EXPECT_EQ(messages[0], "plain");
  std::string want = message;
  want.replace(want.find("\xe9"), 1, "\xef\xbf\xbd");  // U+FFFD
  while (want.back() == '\n') want.pop_back();
  EXPECT_EQ(messages[1], want);
  EXPECT_EQ(messages[2], "after it");
}

// With FetchRequest::save, a long history is handed over in batches, oldest first, each
// before more is read; what is left comes back. An error from save ends the fetch with it.
TEST_F(GitBackendTest, ALongHistoryIsHandedOverInBatches) {
  Commit("a.txt", "1\n", "2020-01-01T00:00:00Z", "root");
  std::string stream;
  for (int i = 0; i < 11999; ++i) stream += ImportCommit(1600000000 + i, "N", "c", i == 0);
  FastImport(stream);
  GitBackend git(dir_.Sub("archive"), 60, 5000);
  FetchRequest r;
  r.args = "{\"uri\":\"" + repo_ + "\"}";
  r.log = [](const std::string&) {};
  std::vector<size_t> batches;
  int64_t last_on = 0;
  bool ordered = true;
  r.save = [&](std::vector<TaskItem>* batch) {
    batches.push_back(batch->size());
    for (const TaskItem& item : *batch) {
      ordered = ordered && item.updated_on >= last_on;
      last_on = item.updated_on;
    }
    return Status::Ok();
  };
  auto rest = git.Fetch(r);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  // A batch goes once 5,000 are read; one read of git's output may hold a few more.
  ASSERT_EQ(batches.size(), 2u);
  for (size_t n : batches) {
    EXPECT_GE(n, 5000u);
    EXPECT_LT(n, 5500u);
  }
  EXPECT_EQ(batches[0] + batches[1] + rest->size(), 12000u);
  EXPECT_TRUE(ordered);
  EXPECT_GE(rest->front().updated_on, last_on);

  int calls = 0;
  r.save = [&](std::vector<TaskItem>*) {
    ++calls;
    return Status::Unavailable("the store is away");
  };
  auto cut = git.Fetch(r);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().message(), "the store is away");
  EXPECT_EQ(calls, 1);
}

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
