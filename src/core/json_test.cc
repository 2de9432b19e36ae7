// Tests of the one reader of untrusted JSON.
#include "core/json.h"

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <string>
#include <vector>

namespace sluice {
namespace {

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

// Every control character is escaped wherever it sits in a string (RapidJSON's own SSE2 scan
// of strings being written let 0x1A-0x1F through raw past the first 16 bytes: not JSON).
TEST(JsonWriter, EscapesEveryControlCharacterAtEveryOffset) {
  for (int c = 0; c < 0x20; ++c) {
    for (size_t at = 0; at < 48; ++at) {
      std::string s = std::string(at, 'a') + static_cast<char>(c) + std::string(40, 'b');
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      w.String(s);
      std::string out(buf.GetString(), buf.GetSize());
      ASSERT_TRUE(std::none_of(out.begin(), out.end(),
                               [](char b) { return static_cast<unsigned char>(b) < 0x20; }))
          << "byte " << c << " at " << at << " written raw";
      rapidjson::Document d;
      ASSERT_TRUE(ParseJson(out, &d).ok()) << out;
      EXPECT_EQ(JsonStr(d), s);
    }
  }
}

TEST(ParseJson, ReadsADocumentWithinTheLimit) {
  rapidjson::Document d;
  ASSERT_TRUE(ParseJson(R"({"a":[1,{"b":"c"}],"n":null})", &d).ok());
  EXPECT_EQ(JsonStr(d["a"][1]["b"]), "c");
}

TEST(ParseJson, RefusesNestingDeeperThanTheLimitWithoutRecursing) {
  rapidjson::Document d;
  JsonParseError err;
  // A million levels would overflow any recursive parser's (or walker's) stack.
  Status st = ParseJson(Nested(1'000'000), &d, 0, &err);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_TRUE(err.too_deep);
  EXPECT_EQ(err.offset, 256u);
  EXPECT_NE(st.message().find("deeper than 256"), std::string::npos) << st.message();
  EXPECT_TRUE(d.IsNull());
}

TEST(ParseJson, AcceptsExactlyTheLimitAndRefusesOneMore) {
  rapidjson::Document d;
  EXPECT_TRUE(ParseJson(Nested(10), &d, 10).ok());
  EXPECT_FALSE(ParseJson(Nested(11), &d, 10).ok());
  EXPECT_FALSE(ParseJson(Nested(11, '{', '}'), &d, 10).ok());  // not JSON either way
  std::string objects;
  for (int i = 0; i < 11; ++i) objects += "{\"k\":";
  objects += "1" + std::string(11, '}');
  JsonParseError err;
  EXPECT_FALSE(ParseJson(objects, &d, 10, &err).ok());
  EXPECT_TRUE(err.too_deep);
}

TEST(ParseJson, TheProcessWideLimitIsConfigurable) {
  SetMaxJsonDepth(5);
  rapidjson::Document d;
  EXPECT_FALSE(ParseJson(Nested(6), &d).ok());
  SetMaxJsonDepth(kDefaultMaxJsonDepth);
  EXPECT_TRUE(ParseJson(Nested(6), &d).ok());
}

TEST(ParseJson, RefusesInvalidUtf8AndSaysWhere) {
  rapidjson::Document d;
  Status st = ParseJson("[\"a\xff\"]", &d);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("at byte"), std::string::npos);
}

TEST(ParseJson, EveryNonUtf8FormIsRefusedAtItsFirstByteInPlaceOrNot) {
  // Overlong, surrogate, above U+10FFFF, truncated, a lone continuation byte; in a string,
  // as a key, and outside any string.
  for (std::string bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xE2\x82", "\x80", "\xFE"}) {
    for (std::string text : {"[\"ok " + bad + "\"]", "{\"k" + bad + "\": 1}", "[1, " + bad + "]"}) {
      size_t at = text.find(bad);
      rapidjson::Document d;
      JsonParseError e;
      Status st = ParseJson(text, &d, 0, &e);
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << text;
      EXPECT_EQ(e.offset, at) << text;
      std::string copy = text;
      st = ParseJsonInsitu(&copy, &d, 0, &e);
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << text;
      EXPECT_EQ(e.offset, at) << text;
    }
  }
  rapidjson::Document d;
  ASSERT_TRUE(ParseJson("[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"]", &d).ok());
  EXPECT_EQ(std::string(d[0].GetString()), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

// Found by fuzz_json: "1\0junk" parsed as 1, the NUL taken for the end of the text.
TEST(ParseJson, ARawNulIsNotJsonWhereverItIs) {
  rapidjson::Document d;
  EXPECT_FALSE(ParseJson(std::string("1\0", 2), &d).ok());
  EXPECT_FALSE(ParseJson(std::string("{}\0junk", 7), &d).ok());
  EXPECT_FALSE(ParseJson(std::string("[\"a\0b\"]", 7), &d).ok());
}

// Found by fuzz_json: a byte order mark, or any of its bytes alone, was skipped ("\xBF2" read
// as 2) where the in-place reader and Python's json refuse it.
TEST(ParseJson, AByteOrderMarkOrAStrayPartOfOneIsNotJson) {
  rapidjson::Document d;
  for (std::string text : {"\xBF"
                           "2",
                           "\xEF\xBB\xBF{}", "\xBB[]",
                           "\xEF"
                           "1"}) {
    EXPECT_FALSE(ParseJson(text, &d).ok()) << text;
    EXPECT_FALSE(ParseJsonInsitu(&text, &d).ok()) << text;
  }
}

TEST(ParseJson, KeepsEscapedNulBytesInsideStrings) {
  rapidjson::Document d;
  ASSERT_TRUE(ParseJson(R"(["q\u0000x"])", &d).ok());
  EXPECT_EQ(JsonStr(d[0]), std::string("q\0x", 3));
}

// Found by fuzz_json: "\udc00" alone became bytes that are not UTF-8 in the parsed document.
TEST(ParseJson, RefusesEscapedLoneSurrogatesSoEveryStringIsUtf8) {
  rapidjson::Document d;
  EXPECT_FALSE(ParseJson(R"(["\ude00"])", &d).ok());
  EXPECT_FALSE(ParseJson(R"({"\udfff": 1})", &d).ok());
  EXPECT_FALSE(ParseJson(R"(["\ud83d"])", &d).ok());  // RapidJSON's own check
  ASSERT_TRUE(ParseJson(R"(["\ud83d\ude00", "\u00e9\ud7ff"])", &d).ok());
  EXPECT_EQ(JsonStr(d[0]), "\xF0\x9F\x98\x80");
}

// Found by fuzz_json: a key given twice was validated with its first value (RapidJSON's
// FindMember) and stored with its last (rows take every member in order).
TEST(ParseJson, AKeyGivenTwiceKeepsItsFirstPlaceAndItsLastValueAsPythonDoes) {
  rapidjson::Document d;
  ASSERT_TRUE(ParseJson(R"({"a":1,"b":{"x":1,"x":[2]},"a":3,"c":4,"a":5})", &d).ok());
  ASSERT_EQ(d.MemberCount(), 3u);
  EXPECT_EQ(JsonStr(d.MemberBegin()->name), "a");
  EXPECT_EQ(d["a"].GetInt(), 5);
  EXPECT_EQ(d["b"].MemberCount(), 1u);
  EXPECT_TRUE(d["b"]["x"].IsArray());
  EXPECT_EQ(WriteJson(d), R"({"a":5,"b":{"x":[2]},"c":4})");
  std::string big = "{";
  for (int i = 0; i < 1000; ++i)
    big += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  big += ",\"k7\":\"last\"}";
  ASSERT_TRUE(ParseJson(big, &d).ok());
  EXPECT_EQ(d.MemberCount(), 1000u);
  EXPECT_EQ(JsonStr(d["k7"]), "last");
}

TEST(ParseJsonInsitu, RefusesARawNulAndNesting) {
  std::string text = "[1]";
  text.insert(1, 1, '\0');
  rapidjson::Document d;
  EXPECT_FALSE(ParseJsonInsitu(&text, &d).ok());
  std::string deep = Nested(100000);
  EXPECT_FALSE(ParseJsonInsitu(&deep, &d).ok());
  std::string ok = R"({"a":"b"})";
  ASSERT_TRUE(ParseJsonInsitu(&ok, &d).ok());
  EXPECT_EQ(JsonStr(d["a"]), "b");
}

// Found by fuzz_kcidb: a text ending inside a UTF-8 sequence was read past its end.
TEST(ParseJsonInsitu, ATextEndingInsideAUtf8SequenceIsNotReadPastItsEnd) {
  for (std::string text : {"\"\xF0", "\"\xE2\x82", "[\"\xF4\x8F\xBF"}) {
    text.shrink_to_fit();
    rapidjson::Document d;
    EXPECT_FALSE(ParseJsonInsitu(&text, &d).ok());
  }
}

// Strings parsed in place are scanned 16 bytes at a time where the build has SSE2 (the copy
// path scans byte by byte): both must read the same value, or refuse the same text, wherever
// an escape, a multi-byte character, a raw control byte or the string's end falls within
// those 16 bytes.
TEST(ParseJsonInsitu, ReadsEveryStringAsTheCopyingParserDoesWhereverItsBytesFall) {
  const std::vector<std::string> specials = {"",        "\\n",      "\\\"", "\\\\",
                                             "\\u00e9", "\xC3\xA9", "\x01", "\x7F"};
  int compared = 0;
  for (size_t lead = 0; lead < 18; ++lead) {
    for (size_t len = 0; len < 36; ++len) {
      for (const std::string& special : specials) {
        for (size_t at : {size_t{0}, size_t{1}, len / 2, len > 0 ? len - 1 : 0}) {
          std::string body(len, 'a');
          body.insert(std::min(at, body.size()), special);
          std::string text = std::string(lead, ' ') + "[\"" + body + "\", \"" + body + "x\"]";
          rapidjson::Document copied, in_place;
          bool copy_ok = ParseJson(text, &copied).ok();
          std::string scratch = text;
          bool in_place_ok = ParseJsonInsitu(&scratch, &in_place).ok();
          ASSERT_EQ(copy_ok, in_place_ok) << text;
          if (!copy_ok) continue;
          EXPECT_EQ(JsonStr(copied[0]), JsonStr(in_place[0])) << text;
          EXPECT_EQ(JsonStr(copied[1]), JsonStr(in_place[1])) << text;
          ++compared;
        }
      }
    }
  }
  EXPECT_GT(compared, 10000);  // the refused ones (the raw control byte) aside
}

// Found by fuzz_json: "92233720368e308" read as infinity, then written as "[" (not JSON).
TEST(ParseJson, NumbersTooLargeForADoubleAreRefused) {
  rapidjson::Document d;
  EXPECT_FALSE(ParseJson("[92233720368e308]", &d).ok());
  EXPECT_FALSE(ParseJson("[18446744073709551615e300]", &d).ok());
  EXPECT_FALSE(ParseJson("[1e309]", &d).ok());
  ASSERT_TRUE(ParseJson("[1e308, -1e308, 0e38]", &d).ok());
  EXPECT_EQ(d[2].GetDouble(), 0.0);
}

TEST(JsonQuote, ReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(JsonQuote("a\"b"), R"("a\"b")");
  EXPECT_EQ(JsonQuote("\xff"), "\"\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace sluice
