// The kcidb handler on real samples, broken inputs, and every upgrade step.
#include "handlers/kcidb/kcidb_handler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/test_util.h"
#include "handlers/kcidb/labs.h"
#include "handlers/kcidb/schemas.h"
#include "handlers/kcidb/upgrade.h"

namespace sluice::kcidb {
namespace {

class KcidbHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = KcidbHandler::Create(KcidbOptions{});
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    handler_ = std::move(*h);
  }
  Status Run(std::string text, HandlerOutput* out) {
    return handler_->Process(&text, 1'800'000'000'000'000, out);
  }
  // Value of `column` in the first row of `table`.
  Value Cell(const HandlerOutput& out, const std::string& table, const std::string& column,
             size_t nth = 0) {
    int t = -1;
    for (size_t i = 0; i < handler_->tables().size(); ++i) {
      if (handler_->tables()[i].name == table) t = static_cast<int>(i);
    }
    int c = -1;
    for (size_t i = 0; i < handler_->tables()[t].columns.size(); ++i) {
      if (handler_->tables()[t].columns[i].name == column) c = static_cast<int>(i);
    }
    EXPECT_GE(c, 0) << column;
    for (const ObjectRow& r : out.rows) {
      if (r.table == t && nth-- == 0) return r.values[c];
    }
    return Value();
  }
  std::unique_ptr<KcidbHandler> handler_;
};

TEST_F(KcidbHandlerTest, TablesHaveOneColumnPerFieldWithNestedObjectsFlattened) {
  std::set<std::string> tables, test_cols;
  for (const TableSpec& t : handler_->tables()) {
    tables.insert(t.name);
    if (t.name == "tests") {
      for (const ColumnSpec& c : t.columns) test_cols.insert(c.name);
    }
  }
  EXPECT_EQ(tables, (std::set<std::string>{"checkouts", "builds", "tests", "issues", "incidents"}));
  for (const char* c :
       {"id", "build_id", "environment_comment", "environment_misc", "environment_compatible",
        "number_value", "number_unit", "misc", "output_files", "_timestamp", "log_excerpt"}) {
    EXPECT_TRUE(test_cols.count(c)) << c;
  }
}

TEST_F(KcidbHandlerTest, EverySampleSubmissionIngests) {
  std::string dir = testing::SharedKcidbDir();
  if (dir.empty()) GTEST_SKIP() << "../shared/kcidb not present";
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir + "/submissions_sample")) {
    HandlerOutput out;
    Status st = Run(testing::ReadAll(e.path()), &out);
    EXPECT_TRUE(st.ok()) << e.path() << ": " << st.ToString() << " " << out.error_detail;
    EXPECT_GT(out.objects, 0u) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 13);
}

TEST_F(KcidbHandlerTest, V4BuildsValidBecomesStatus) {
  HandlerOutput out;
  ASSERT_TRUE(Run(R"({"version": {"major": 4, "minor": 2}, "builds": [
      {"id": "o:b1", "origin": "o", "checkout_id": "o:c1", "valid": true},
      {"id": "o:b2", "origin": "o", "checkout_id": "o:c1", "valid": false}]})",
                  &out)
                  .ok());
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "status", 0)), "PASS");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "status", 1)), "FAIL");
  EXPECT_NE(out.summary.find("\"upgraded\":true"), std::string::npos);
}

TEST_F(KcidbHandlerTest, V4WaivedTestBecomesAnIncidentOfTheWaivedIssue) {
  HandlerOutput out;
  ASSERT_TRUE(Run(R"({"version": {"major": 4, "minor": 5}, "tests": [
      {"id": "o:t1", "origin": "o", "build_id": "o:b1", "waived": true, "status": "FAIL"},
      {"id": "o:t2", "origin": "o", "build_id": "o:b1", "waived": false}]})",
                  &out)
                  .ok());
  EXPECT_EQ(std::get<std::string>(Cell(out, "issues", "id")), "_:waived");
  EXPECT_EQ(std::get<std::string>(Cell(out, "incidents", "test_id")), "o:t1");
  EXPECT_EQ(std::get<std::string>(Cell(out, "incidents", "id")), "_:waived:1:o:t1");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(Cell(out, "incidents", "id", 1)));
}

TEST_F(KcidbHandlerTest, V1SubmissionUpgradesThroughEveryStep) {
  HandlerOutput out;
  Status st = Run(R"({"version": "1", "revisions": [
      {"origin": "lab", "origin_id": "abc123", "git_repository_commit_hash":
       "0123456789012345678901234567890123456789", "description": "rev",
       "publishing_time": "2020-01-01T00:00:00Z"}],
    "builds": [{"origin": "lab", "origin_id": "b1", "revision_origin": "lab",
                "revision_origin_id": "abc123", "valid": true,
                "output_files": [{"name": "a/b", "url": "https://x.org/a"}]}],
    "tests": [{"origin": "lab", "origin_id": "t1", "build_origin": "lab",
               "build_origin_id": "b1", "description": "d", "waived": true}]})",
                  &out);
  ASSERT_TRUE(st.ok()) << st.ToString() << out.error_detail;
  EXPECT_EQ(std::get<std::string>(Cell(out, "checkouts", "id")), "_:lab:abc123");
  EXPECT_EQ(std::get<std::string>(Cell(out, "checkouts", "git_commit_hash")),
            "0123456789012345678901234567890123456789");
  EXPECT_EQ(std::get<std::string>(Cell(out, "checkouts", "comment")), "rev");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "id")), "lab:b1");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "checkout_id")), "_:lab:abc123");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "status")), "PASS");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "output_files")),
            R"([{"name":"a_b","url":"https://x.org/a"}])");
  EXPECT_EQ(std::get<std::string>(Cell(out, "tests", "build_id")), "lab:b1");
  EXPECT_EQ(std::get<std::string>(Cell(out, "tests", "comment")), "d");
  EXPECT_EQ(std::get<std::string>(Cell(out, "incidents", "test_id")), "lab:t1");
}

TEST_F(KcidbHandlerTest, V4TestPathThatV5ForbidsIsUpgradeImpossible) {
  HandlerOutput out;
  Status st = Run(R"({"version": {"major": 4, "minor": 0}, "tests": [
      {"id": "o:t1", "origin": "o", "build_id": "o:b1", "path": "a..b"}]})",
                  &out);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(out.error_code, "upgrade_impossible");
}

TEST_F(KcidbHandlerTest, BrokenJsonFailsWithTheOffset) {
  HandlerOutput out;
  Status st = Run(R"({"version": {"major": 5, "minor": 3}, "tests": [)", &out);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_FALSE(st.IsTransient());
  EXPECT_EQ(out.error_code, "invalid_json");
  EXPECT_NE(out.error_detail.find("offset"), std::string::npos);
}

TEST_F(KcidbHandlerTest, TrailingDataAndNulBytesAreNotJsonAsInThePythonReference) {
  for (std::string doc :
       {std::string(R"({"version": {"major": 5, "minor": 3}} extra)"),
        std::string("{\"version\": {\"major\": 5}}\0garbage", 31), std::string("\0{}", 3)}) {
    HandlerOutput out;
    EXPECT_EQ(Run(doc, &out).code(), Code::kInvalidArgument);
    EXPECT_EQ(out.error_code, "invalid_json");
  }
}

TEST_F(KcidbHandlerTest, SchemaViolationNamesTheInstanceAndSchemaPath) {
  HandlerOutput out;
  Status st = Run(R"({"version": {"major": 5, "minor": 3}, "tests": [
      {"id": "o:t1", "origin": "o", "build_id": "o:b1", "status": "MAYBE"}]})",
                  &out);
  EXPECT_EQ(out.error_code, "schema_violation");
  EXPECT_NE(st.message().find("/tests/0/status"), std::string::npos) << st.message();
  EXPECT_NE(out.error_detail.find("\"schema_path\""), std::string::npos);
}

TEST_F(KcidbHandlerTest, UnknownVersionsAreRefused) {
  for (const char* doc :
       {R"({"version": {"major": 6, "minor": 0}})", R"({"version": {"major": 5, "minor": 9}})",
        R"({"version": "2.0"})", R"({"tests": []})", R"([1, 2])"}) {
    HandlerOutput out;
    Status st = Run(doc, &out);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << doc;
    EXPECT_EQ(out.error_code, "unsupported_version") << doc;
  }
}

TEST_F(KcidbHandlerTest, DeeplyNestedJsonIsRefusedWithoutCrashing) {
  std::string deep = R"({"version": {"major": 5, "minor": 3}, "tests": [{"id": "o:t", "origin":
      "o", "build_id": "o:b", "misc": )";
  for (int i = 0; i < 100000; ++i) deep += "[";
  for (int i = 0; i < 100000; ++i) deep += "]";
  deep += "}]}";
  HandlerOutput out;
  Status st = Run(deep, &out);
  EXPECT_EQ(out.error_code, "too_deep");
}

TEST_F(KcidbHandlerTest, KnownRepositoryGetsItsTreeName) {
  HandlerOutput out;
  ASSERT_TRUE(Run(R"({"version": {"major": 5, "minor": 3}, "checkouts": [
      {"id": "o:c1", "origin": "o", "tree_name": "wrong",
       "git_repository_url": "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"},
      {"id": "o:c2", "origin": "o", "tree_name": "mine",
       "git_repository_url": "https://example.org/x.git"}]})",
                  &out)
                  .ok());
  EXPECT_EQ(std::get<std::string>(Cell(out, "checkouts", "tree_name", 0)), "mainline");
  EXPECT_EQ(std::get<std::string>(Cell(out, "checkouts", "tree_name", 1)), "mine");
}

TEST_F(KcidbHandlerTest, MissingTimestampIsTheIngestionTime) {
  HandlerOutput out;
  ASSERT_TRUE(Run(R"({"version": {"major": 5, "minor": 3}, "issues": [
      {"id": "o:i1", "origin": "o", "version": 1},
      {"id": "o:i2", "origin": "o", "version": 1, "_timestamp": "2020-01-01T00:00:00+00:00"}]})",
                  &out)
                  .ok());
  EXPECT_EQ(std::get<std::string>(Cell(out, "issues", "_timestamp", 0)),
            "2027-01-15T08:00:00.000000Z");
  EXPECT_EQ(std::get<std::string>(Cell(out, "issues", "_timestamp", 1)),
            "2020-01-01T00:00:00+00:00");
}

TEST_F(KcidbHandlerTest, AutomaticLabNamesMoveAsideAndTheOriginStandsIn) {
  HandlerOutput out;
  ASSERT_TRUE(Run(R"({"version": {"major": 5, "minor": 3},
      "builds": [
        {"id": "o:b1", "origin": "maestro", "checkout_id": "o:c", "misc": {"lab": "shell"}},
        {"id": "o:b2", "origin": "maestro", "checkout_id": "o:c", "misc": {"lab": "collabora"}},
        {"id": "o:b3", "origin": "maestro", "checkout_id": "o:c"}],
      "tests": [
        {"id": "o:t1", "origin": "broonie", "build_id": "o:b1", "misc": {"runtime": "k8s-gke"}},
        {"id": "o:t2", "origin": "broonie", "build_id": "o:b1", "misc": {"runtime": "lava-x"}},
        {"id": "o:t3", "origin": "broonie", "build_id": "o:b1", "misc": {"runtime": "k8"}}]})",
                  &out)
                  .ok());
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "misc", 0)),
            R"({"automatic_lab":"shell","lab":"maestro"})");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "misc", 1)), R"({"lab":"collabora"})");
  EXPECT_EQ(std::get<std::string>(Cell(out, "builds", "misc", 2)), R"({"lab":"maestro"})");
  EXPECT_EQ(std::get<std::string>(Cell(out, "tests", "misc", 0)),
            R"({"automatic_lab":"k8s-gke","runtime":"broonie"})");
  EXPECT_EQ(std::get<std::string>(Cell(out, "tests", "misc", 1)), R"({"runtime":"lava-x"})");
  EXPECT_EQ(std::get<std::string>(Cell(out, "tests", "misc", 2)), R"({"runtime":"k8"})");
}

TEST(LabsTest, AutomaticNamesFollowThePythonPattern) {
  EXPECT_TRUE(IsAutomaticLab("shell"));
  EXPECT_TRUE(IsAutomaticLab("shell\n"));
  EXPECT_TRUE(IsAutomaticLab("k8s"));
  EXPECT_TRUE(IsAutomaticLab("k8s-all"));
  EXPECT_FALSE(IsAutomaticLab("shell2"));
  EXPECT_FALSE(IsAutomaticLab("my-k8s"));
  EXPECT_FALSE(IsAutomaticLab("k8s\nx"));
  EXPECT_FALSE(IsAutomaticLab(""));
}

TEST(TreeMapTest, ParsesTheShippedFileAndRejectsBrokenOnes) {
  auto trees = TreeMap::Default();
  ASSERT_TRUE(trees.ok());
  EXPECT_EQ(trees->size(), 50u);
  EXPECT_EQ(TreeMap::Parse("nothing: here").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TreeMap::Parse("trees: [").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TreeMap::Parse("trees:\n  a: {}\n").status().code(), Code::kInvalidArgument);
}

TEST(SchemasTest, OnlyVersionsKcidbIoHasAreTaken) {
  EXPECT_TRUE(SchemaFor({4, 2}).ok());
  EXPECT_TRUE(SchemaFor({1, 1}).ok());
  EXPECT_FALSE(SchemaFor({1, 0}).ok());  // kcidb-io has no 1.0
  EXPECT_FALSE(SchemaFor({4, 6}).ok());
  EXPECT_FALSE(SchemaFor({0, 1}).ok());
}

// As kcidb-io's V1_1._get_version: "1" is 1.1, "1.0" and {"major": 1} are 1.0 (refused).
TEST(SchemasTest, VersionsAreReadAsKcidbIoReadsThem) {
  auto version = [](const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    auto v = DeclaredVersion(d);
    return v.ok() ? v->ToString() : std::string("error");
  };
  EXPECT_EQ(version(R"({"version": "1"})"), "1.1");
  EXPECT_EQ(version(R"({"version": "1.0"})"), "1.0");
  EXPECT_EQ(version(R"({"version": "1.1"})"), "1.1");
  EXPECT_EQ(version(R"({"version": {"major": 1}})"), "1.0");
  EXPECT_EQ(version(R"({"version": {"major": 4}})"), "4.0");
  EXPECT_EQ(version(R"({"version": "2.0"})"), "error");
  EXPECT_EQ(version(R"({"version": "x"})"), "error");
}

TEST_F(KcidbHandlerTest, VersionsKcidbIoDoesNotHaveAreRefused) {
  for (const char* v : {R"({"major": 1, "minor": 0})", R"({"major": 1})", R"("1.0")"}) {
    HandlerOutput out;
    Status st = Run(std::string(R"({"version": )") + v + "}", &out);
    EXPECT_FALSE(st.ok()) << v;
    EXPECT_EQ(out.error_code, "unsupported_version") << v;
  }
  HandlerOutput out;
  EXPECT_TRUE(Run(R"({"version": "1"})", &out).ok()) << out.error_detail;
}

}  // namespace
}  // namespace sluice::kcidb
