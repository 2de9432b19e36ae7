// GitBackend over real repositories made in a temporary directory.
#include "handlers/git/git_backend.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>

#include "core/json.h"
#include "core/test_util.h"
#include "handlers/git/git_log.h"

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
  // As git's fuller format shows it (Perceval's message): a CR before a line's end dropped,
  // tabs expanded, trailing empty lines gone.
  EXPECT_EQ(messages[1], std::string("sep \x1e and \x1f; esc \x1b[31mred\x1b[0m; caf\xef\xbf\xbd; "
                                     "\x01\x02\nsluice-commit-\nsluice-message-end-\n\n\n"
                                     "not a numstat   1       2"));
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
    if (msg == "two") {  // counts as Perceval has them: strings
      EXPECT_EQ(JsonStr(i["data"]["files"][0]["added"]), "0");
      EXPECT_EQ(JsonStr(i["data"]["files"][0]["removed"]), "1");
    }
    if (msg == "bin") {
      EXPECT_EQ(JsonStr(i["data"]["files"][0]["added"]), "-");
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

// Every field of Perceval's item, as Perceval's parser makes it from the same repository:
// refs, the Merge header, trailers, renames and copies with their modes, indexes and actions,
// counts as strings, a commit without a message, git's own date format.
TEST_F(GitBackendTest, ItemsAreThoseOfPerceval) {
  std::string r = "cd " + repo_ +
                  " && export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@x GIT_AUTHOR_DATE="
                  "2024-03-05T07:08:09+0530 GIT_COMMITTER_DATE=2024-03-05T07:08:09+0530 && ";
  testing::WriteAll(repo_ + "/a.txt", "a\n");
  testing::WriteAll(repo_ + "/big.txt", std::string(30, 'x') + "\n" + std::string(30, 'y'));
  Sh(r + "git add . && git commit -q -m first -m 'Signed-off-by: Ann <a@x>'" +
     " -m 'reviewed-BY: Bob <b@x>'");
  Sh(r + "git mv big.txt moved.txt && cp moved.txt copy.txt && echo b >> a.txt && git add . && " +
     "git commit -q -m 'rename and copy'");
  Sh(r + "git checkout -q -b side && printf '\\000\\001' > bin.dat && git add . && " +
     "git commit -q --allow-empty-message -m ''");
  Sh(r + "git checkout -q main && echo c > c.txt && git add . && git commit -q -m c && " +
     "git merge -q --no-ff -m merged side && git tag v1");
  auto all = Fetch(",\"tag\":\"mine\",\"ssl_verify\":false");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 5u);
  // ssl_verify false stays in the clone's configuration, as Perceval's clone leaves it.
  std::string clone = GitBackend(dir_.Sub("archive"), 60).ClonePath(repo_);
  Sh("test \"$(git -C " + clone + " config http.sslVerify)\" = false");
  std::vector<rapidjson::Document> items(5);
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(ParseJson((*all)[i].data, &items[i]).ok());

  const rapidjson::Document& first = items[0];
  std::vector<std::string> keys;
  for (auto& m : first.GetObject()) keys.push_back(m.name.GetString());
  EXPECT_EQ(keys, (std::vector<std::string>{"backend_name", "backend_version", "perceval_version",
                                            "timestamp", "origin", "uuid", "updated_on",
                                            "classified_fields_filtered", "category",
                                            "search_fields", "tag", "data", "offset"}));
  std::string hash = JsonStr(first["data"]["commit"]);
  EXPECT_EQ(JsonStr(first["uuid"]), Sha1Hex(repo_ + ":" + hash));
  EXPECT_EQ(JsonStr(first["offset"]), hash);
  EXPECT_EQ(JsonStr(first["search_fields"]["item_id"]), hash);
  EXPECT_EQ(JsonStr(first["tag"]), "mine");
  EXPECT_TRUE(first["classified_fields_filtered"].IsNull());
  EXPECT_DOUBLE_EQ(first["updated_on"].GetDouble(), 1709602689.0);
  const auto& d = first["data"];
  keys.clear();
  for (auto& m : d.GetObject()) keys.push_back(m.name.GetString());
  EXPECT_EQ(keys, (std::vector<std::string>{"commit", "parents", "refs", "Author", "AuthorDate",
                                            "Commit", "CommitDate", "message", "Signed-off-by",
                                            "Reviewed-by", "files"}));
  EXPECT_EQ(JsonStr(d["AuthorDate"]), "Tue Mar 5 07:08:09 2024 +0530");
  EXPECT_EQ(JsonStr(d["Author"]), "A <a@x>");
  EXPECT_EQ(JsonStr(d["message"]), "first\n\nSigned-off-by: Ann <a@x>\n\nreviewed-BY: Bob <b@x>");
  EXPECT_EQ(JsonStr(d["Reviewed-by"][0]), "Bob <b@x>");
  EXPECT_EQ(JsonStr(d["files"][1]["file"]), "big.txt");
  EXPECT_EQ(JsonStr(d["files"][1]["action"]), "A");
  EXPECT_EQ(JsonStr(d["files"][1]["modes"][1]), "100644");
  EXPECT_EQ(JsonStr(d["files"][1]["added"]), "2");

  // Renamed and copied: sorted by the new name, with the old one.
  const auto& moved = items[1]["data"]["files"];
  ASSERT_EQ(moved.Size(), 3u);
  EXPECT_EQ(JsonStr(moved[0]["file"]), "a.txt");
  EXPECT_EQ(JsonStr(moved[1]["newfile"]), "copy.txt");
  EXPECT_EQ(JsonStr(moved[1]["action"]).substr(0, 1), "C");
  EXPECT_EQ(JsonStr(moved[2]["file"]), "big.txt");
  EXPECT_EQ(JsonStr(moved[2]["newfile"]), "moved.txt");
  EXPECT_EQ(JsonStr(moved[2]["action"]), "R100");
  EXPECT_EQ(JsonStr(moved[2]["added"]), "0");

  // The side branch's commit: no message at all, a binary file, its branch among its refs.
  const rapidjson::Document* side = nullptr;
  const rapidjson::Document* merge = nullptr;
  for (const auto& item : items) {
    if (!item["data"].HasMember("message")) side = &item;
    if (item["data"]["parents"].Size() == 2) merge = &item;
  }
  ASSERT_NE(side, nullptr);
  EXPECT_EQ(JsonStr((*side)["data"]["refs"][0]), "refs/heads/side");
  EXPECT_EQ(JsonStr((*side)["data"]["files"][0]["added"]), "-");
  ASSERT_NE(merge, nullptr);
  const auto& m = (*merge)["data"];
  EXPECT_EQ(JsonStr(m["refs"][0]), "HEAD -> refs/heads/main");
  EXPECT_EQ(JsonStr(m["refs"][1]), "tag: refs/tags/v1");
  EXPECT_EQ(JsonStr(m["Merge"]),
            JsonStr(m["parents"][0]).substr(0, 7) + " " + JsonStr(m["parents"][1]).substr(0, 7));
  EXPECT_EQ(m.MemberBegin()[3].name.GetString(), std::string("Merge"));  // before Author
}

TEST_F(GitBackendTest, BadArgumentsAndOriginsAreRefusedWithAReason) {
  GitBackend git(dir_.Sub("archive"), 60);
  EXPECT_EQ(git.Validate("{}").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"--upload-pack=touch /tmp/x"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","from_date":"yesterday"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","colour":"red"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","tag":7})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate("{\"uri\":\"x\",\"tag\":\"" + std::string(3000, 't') + "\"}").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","tag":"a\nb"})").code(), Code::kInvalidArgument);
  // The origin is copied into every item too: bounded at a path's length, one line.
  EXPECT_EQ(git.Validate("{\"uri\":\"/" + std::string(4096, 'u') + "\"}").code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(git.Validate("{\"uri\":\"/" + std::string(4095, 'u') + "\"}").ok());
  EXPECT_EQ(git.Validate(R"({"uri":"/srv/a\nb"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(git.Validate(R"({"uri":"x","ssl_verify":"no"})").code(), Code::kInvalidArgument);
  EXPECT_TRUE(git.Validate(R"({"uri":"x","tag":"t","ssl_verify":false})").ok());
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
