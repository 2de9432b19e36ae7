// JsonSchema against the official JSON-Schema-Test-Suite (draft 7), for every keyword the KCIDB
// schemas use and the others the validator implements, plus KCIDB-specific behaviour.
#include "core/json_schema.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice {
namespace {

const char* kSuite = "/usr/share/json-schema-test-suite/tests/draft7/";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

// Groups that need what this validator deliberately leaves out (remote refs, $id scoping).
bool NeedsUnsupported(const std::string& schema_json) {
  return schema_json.find("http://") != std::string::npos ||
         schema_json.find("https://") != std::string::npos ||
         schema_json.find("\"$id\"") != std::string::npos;
}

class SuiteTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SuiteTest, AgreesWithEveryCaseOfTheOfficialSuite) {
  std::string path = std::string(kSuite) + GetParam();
  ASSERT_TRUE(std::filesystem::exists(path)) << "install json-schema-test-suite: " << path;
  rapidjson::Document groups;
  groups.Parse(Slurp(path).c_str());
  ASSERT_FALSE(groups.HasParseError());
  int checked = 0;
  for (auto& group : groups.GetArray()) {
    std::string schema_json = ToJson(group["schema"]);
    if (NeedsUnsupported(schema_json)) continue;
    auto schema = JsonSchema::Compile(schema_json);
    ASSERT_TRUE(schema.ok()) << group["description"].GetString() << ": "
                             << schema.status().ToString();
    for (auto& test : group["tests"].GetArray()) {
      SchemaError err;
      bool valid = (*schema)->Validate(test["data"], &err);
      EXPECT_EQ(valid, test["valid"].GetBool())
          << GetParam() << " / " << group["description"].GetString() << " / "
          << test["description"].GetString() << " (" << err.message << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Draft7, SuiteTest,
    ::testing::Values("type.json", "pattern.json", "ref.json", "properties.json",
                      "additionalProperties.json", "required.json", "items.json", "minimum.json",
                      "maximum.json", "maxLength.json", "minLength.json", "enum.json", "const.json",
                      "oneOf.json", "anyOf.json", "allOf.json", "not.json", "additionalItems.json",
                      "boolean_schema.json", "contains.json", "dependencies.json",
                      "exclusiveMaximum.json", "exclusiveMinimum.json", "if-then-else.json",
                      "maxItems.json", "minItems.json", "maxProperties.json", "minProperties.json",
                      "multipleOf.json", "patternProperties.json", "propertyNames.json",
                      "uniqueItems.json", "optional/format/date-time.json",
                      "optional/format/uri.json", "optional/format/email.json"),
    [](const auto& info) {
      std::string n = info.param;
      for (char& c : n) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

TEST(JsonSchemaTest, PatternDollarMatchesBeforeAFinalNewlineAsPythonDoes) {
  auto s = JsonSchema::Compile(R"({"pattern": "^[a-z]+$"})");
  ASSERT_TRUE(s.ok());
  rapidjson::Document d;
  d.Parse(R"("abc\n")");
  EXPECT_TRUE((*s)->Validate(d, nullptr));
  d.Parse(R"("abc\nd")");
  EXPECT_FALSE((*s)->Validate(d, nullptr));
}

TEST(JsonSchemaTest, LengthsCountCharactersWhetherOrNotTheSizeSettlesThem) {
  auto s = JsonSchema::Compile(R"({"minLength": 2, "maxLength": 3})");
  ASSERT_TRUE(s.ok());
  auto check = [&](const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    EXPECT_FALSE(d.HasParseError()) << text;
    return (*s)->Validate(d, nullptr);
  };
  EXPECT_TRUE(check("\"ab\""));
  EXPECT_TRUE(check("\"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\""));  // 9 bytes, 3 characters
  EXPECT_FALSE(check("\"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\""));  // 4
  EXPECT_TRUE(check("\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\""));  // 8 bytes, 2 characters
  EXPECT_FALSE(check("\"\xF0\x9F\x98\x80\""));                 // 4 bytes, 1 character
  EXPECT_FALSE(check("\"a\""));
  EXPECT_FALSE(check("\"abcd\""));
}

TEST(JsonSchemaTest, NulPatternRejectsOnlyStringsWithNul) {
  auto s = JsonSchema::Compile(R"({"pattern": "^[^\\0]*$"})");
  ASSERT_TRUE(s.ok());
  rapidjson::Document d;
  d.Parse(R"("multi\nline text")");
  EXPECT_TRUE((*s)->Validate(d, nullptr));
  d.Parse(R"("a\u0000b")");
  SchemaError err;
  EXPECT_FALSE((*s)->Validate(d, &err));
  EXPECT_EQ(err.schema_path, "/pattern");
}

TEST(JsonSchemaTest, ErrorNamesTheInstancePathAndSchemaPath) {
  auto s = JsonSchema::Compile(
      R"({"$defs": {"t": {"type": "object", "properties": {"path": {"type": "string",
          "pattern": "^[a-z.]*$"}}}}, "properties": {"tests": {"items": {"$ref": "#/$defs/t"}}}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  rapidjson::Document d;
  d.Parse(R"({"tests": [{"path": "ok"}, {"path": "Not OK"}]})");
  SchemaError err;
  ASSERT_FALSE((*s)->Validate(d, &err));
  EXPECT_EQ(err.instance_path, "/tests/1/path");
  EXPECT_EQ(err.schema_path, "/$defs/t/properties/path/pattern");
}

TEST(JsonSchemaTest, RemoteRefIsRejectedAtCompileTime) {
  auto s = JsonSchema::Compile(R"({"$ref": "http://example.com/schema.json"})");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
