// Deriving table specs from the KCIDB schema, and turning objects into rows.
#include "handlers/kcidb/tables.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json.h"

namespace sluice::kcidb {
namespace {

using rapidjson::Value;

// Follows "$ref": "#/$defs/x" once.
const Value& Deref(const Value& schema, const Value& prop) {
  auto ref = prop.FindMember("$ref");
  if (ref == prop.MemberEnd() || !ref->value.IsString()) return prop;
  std::string r = ref->value.GetString();
  const std::string prefix = "#/$defs/";
  if (r.rfind(prefix, 0) != 0) return prop;
  const Value& defs = schema["$defs"];
  auto it = defs.FindMember(r.substr(prefix.size()).c_str());
  return it == defs.MemberEnd() ? prop : it->value;
}

std::string TypeOf(const Value& prop) {
  auto t = prop.FindMember("type");
  if (t == prop.MemberEnd() || !t->value.IsString()) return "";
  return t->value.GetString();
}

ColumnType ColumnFor(const std::string& type, bool* json) {
  *json = type == "array" || type == "object" || type.empty();
  if (type == "integer" || type == "boolean") return ColumnType::kInteger;
  if (type == "number") return ColumnType::kReal;
  return ColumnType::kText;
}

std::string JsonText(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

Value::ConstObject EmptyObject() {
  static const Value kEmpty(rapidjson::kObjectType);
  return kEmpty.GetObject();
}

}  // namespace

Result<Tables> Tables::FromSchema(std::string_view schema_json) {
  rapidjson::Document schema;
  if (!ParseJson(schema_json, &schema).ok() || !schema.IsObject() ||
      !schema.HasMember("properties") || !schema.HasMember("$defs")) {
    return Status::InvalidArgument("the KCIDB schema is not usable for tables");
  }
  Tables t;
  for (auto& top : schema["properties"].GetObject()) {
    std::string list = top.name.GetString();
    if (TypeOf(top.value) != "array" || !top.value.HasMember("items")) continue;
    const Value& item = Deref(schema, top.value["items"]);
    if (!item.HasMember("properties")) continue;
    TableSpec spec;
    spec.name = list;
    std::unordered_map<std::string, Field> fields;
    auto add = [&](const std::string& name, const Value& prop) {
      bool json = false;
      ColumnSpec c;
      c.name = name;
      c.type = ColumnFor(TypeOf(prop), &json);
      c.merge = name == "id"           ? MergeRule::kKey
                : name == "_timestamp" ? MergeRule::kGreatest
                                       : MergeRule::kFirstNonNull;
      spec.columns.push_back(c);
      return std::pair<int, bool>(static_cast<int>(spec.columns.size()) - 1, json);
    };
    for (auto& p : item["properties"].GetObject()) {
      std::string name = p.name.GetString();
      const Value& prop = Deref(schema, p.value);
      Field f;
      if (TypeOf(prop) == "object" && prop.HasMember("properties")) {
        for (auto& sp : prop["properties"].GetObject()) {
          const Value& sub = Deref(schema, sp.value);
          f.sub[sp.name.GetString()] = add(name + "_" + sp.name.GetString(), sub).first;
        }
      } else {
        auto [col, json] = add(name, prop);
        f.column = col;
        f.json = json;
      }
      fields[name] = std::move(f);
    }
    t.specs_.push_back(std::move(spec));
    t.lists_.push_back(list);
    t.fields_.push_back(std::move(fields));
  }
  if (t.specs_.empty()) return Status::InvalidArgument("the KCIDB schema defines no object lists");
  return t;
}

int Tables::TableFor(std::string_view list) const {
  for (size_t i = 0; i < lists_.size(); ++i) {
    if (lists_[i] == list) return static_cast<int>(i);
  }
  return -1;
}

int Tables::ColumnIndex(int table, std::string_view column) const {
  const auto& cols = specs_[static_cast<size_t>(table)].columns;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].name == column) return static_cast<int>(i);
  }
  return -1;
}

ObjectRow Tables::ToRow(int table, const Value& obj) const {
  const TableSpec& spec = specs_[static_cast<size_t>(table)];
  const auto& fields = fields_[static_cast<size_t>(table)];
  ObjectRow row;
  row.table = table;
  row.values.resize(spec.columns.size());
  auto put = [&](int col, const Value& v, bool json) {
    if (v.IsNull()) return;
    if (json || v.IsObject() || v.IsArray()) {
      row.values[static_cast<size_t>(col)] = JsonText(v);
    } else if (v.IsString()) {
      row.values[static_cast<size_t>(col)] = std::string(v.GetString(), v.GetStringLength());
    } else if (v.IsBool()) {
      row.values[static_cast<size_t>(col)] = int64_t{v.GetBool() ? 1 : 0};
    } else if (spec.columns[static_cast<size_t>(col)].type == ColumnType::kReal) {
      row.values[static_cast<size_t>(col)] = v.GetDouble();
    } else if (v.IsInt64()) {
      row.values[static_cast<size_t>(col)] = v.GetInt64();
    } else {
      row.values[static_cast<size_t>(col)] = v.GetDouble();
    }
  };
  for (auto& m : obj.IsObject() ? obj.GetObject() : EmptyObject()) {
    auto it = fields.find(std::string(m.name.GetString(), m.name.GetStringLength()));
    if (it == fields.end()) continue;
    const Field& f = it->second;
    if (f.column >= 0) {
      put(f.column, m.value, f.json);
    } else if (m.value.IsObject()) {
      for (auto& sm : m.value.GetObject()) {
        auto sit = f.sub.find(JsonStr(sm.name));
        if (sit != f.sub.end()) put(sit->second, sm.value, false);
      }
    }
  }
  return row;
}

}  // namespace sluice::kcidb
