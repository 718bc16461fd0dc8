// File: broker/config_file.cc
//
// The configuration file (--config FILE): TOML whose keys are the long
// options of the option table (config_options.hpp), read through toml++.
// A value is checked for its TOML type, then handed to the option's own
// parser as the command line would spell it, so bounds and messages are the
// flags'. Also prints a Config back as such a file (--print-config).
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include "broker/config.hpp"
#include "broker/config_options.hpp"

namespace modelpool::broker {
namespace {

std::string where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

const char* expected(OptionKind kind) {
  switch (kind) {
    case OptionKind::kString:
    case OptionKind::kChoice:
      return "a string";
    case OptionKind::kFlag:
      return "true or false";
    case OptionKind::kSize:
      return "a size: a string such as \"8GiB\" or a number of bytes";
    case OptionKind::kCount:
      return "an integer";
    case OptionKind::kFraction:
      return "a number";
    case OptionKind::kList:
      return "an array of strings";
  }
  return "?";
}

std::string number_text(double d) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  if (ec != std::errc()) return "nan";
  std::string s(buf, end);
  // TOML floats need a fraction or an exponent ("1" would be an integer).
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// The value of `node` as the command line spells it for an option of `kind`
// (one string per item for a list), or nothing when its TOML type is wrong.
bool command_line_values(const toml::node& node, OptionKind kind, std::vector<std::string>* out) {
  switch (kind) {
    case OptionKind::kString:
    case OptionKind::kChoice:
      if (!node.is_string()) return false;
      out->push_back(node.as_string()->get());
      return true;
    case OptionKind::kFlag:
      if (!node.is_boolean()) return false;
      out->push_back(node.as_boolean()->get() ? "true" : "false");
      return true;
    case OptionKind::kSize:
      if (node.is_string()) {
        out->push_back(node.as_string()->get());
        return true;
      }
      [[fallthrough]];
    case OptionKind::kCount:
      if (!node.is_integer()) return false;
      out->push_back(std::to_string(node.as_integer()->get()));
      return true;
    case OptionKind::kFraction:
      if (node.is_integer()) {
        out->push_back(std::to_string(node.as_integer()->get()));
      } else if (node.is_floating_point()) {
        out->push_back(number_text(node.as_floating_point()->get()));
      } else {
        return false;
      }
      return true;
    case OptionKind::kList:
      if (!node.is_array()) return false;
      for (const toml::node& item : *node.as_array()) {
        if (!item.is_string()) return false;
        out->push_back(item.as_string()->get());
      }
      return true;
  }
  return false;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return error(ErrorCode::kBadRequest,
                 "--config: cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// "8GiB" when the size is a whole number of a binary unit, else bytes.
std::string size_text(std::uint64_t n) {
  static constexpr std::pair<int, const char*> kUnits[] = {
      {40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  for (const auto& [shift, unit] : kUnits) {
    if (n % (1ULL << shift) == 0) return toml_string(std::to_string(n >> shift) + unit);
  }
  return std::to_string(n);
}

// The TOML text of one option's value; empty when it is not set (an empty
// string or list, a size of 0: the broker's own choice at start).
std::string toml_value(const Option& o, const nlohmann::json& v) {
  switch (o.kind) {
    case OptionKind::kString:
    case OptionKind::kChoice:
      return v.get<std::string>().empty() ? "" : toml_string(v.get<std::string>());
    case OptionKind::kFlag:
      return v.get<bool>() ? "true" : "false";
    case OptionKind::kSize:
      return v.get<std::uint64_t>() == 0 ? "" : size_text(v.get<std::uint64_t>());
    case OptionKind::kCount:
      return std::to_string(v.get<std::uint64_t>());
    case OptionKind::kFraction:
      return number_text(v.get<double>());
    case OptionKind::kList: {
      if (v.empty()) return "";
      std::string out = "[";
      for (const auto& item : v)
        out += (out.size() > 1 ? ", " : "") + toml_string(item.get<std::string>());
      return out + "]";
    }
  }
  return "";
}

}  // namespace

Status apply_config_file(const std::string& path, const std::vector<std::string>& overridden,
                         Config* config) {
  auto text = read_file(path);
  if (!text.ok()) return text.status();
  toml::table doc;
  try {
    doc = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return error(ErrorCode::kBadRequest, path + ":" + std::to_string(at.line) + ":" +
                                             std::to_string(at.column) +
                                             ": not TOML: " + std::string(e.description()));
  }

  // Every key in file order (toml++ keeps a table's keys sorted); unknown
  // ones are reported first, all of them.
  std::vector<std::pair<const Option*, const toml::node*>> keys;
  std::vector<std::pair<std::uint32_t, std::string>> unknown;
  for (const auto& [key, node] : doc) {
    const std::string name(key.str());
    const Option* o = find_config_option(name);
    if (o != nullptr && o->command_line_only) {
      return error(ErrorCode::kBadRequest,
                   where(path, node) + ": " + name + ": only on the command line");
    }
    if (o == nullptr) {
      unknown.emplace_back(node.source().begin.line, where(path, node) + ": unknown key " + name);
    } else {
      keys.emplace_back(o, &node);
    }
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    std::string all;
    for (const auto& u : unknown) all += (all.empty() ? "" : "; ") + u.second;
    return error(ErrorCode::kBadRequest, all + " (the keys are the long options of --help)");
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a.second->source().begin.line < b.second->source().begin.line;
  });

  Config scratch;  // where overridden keys go, so that they are checked all the same
  for (const auto& [o, node] : keys) {
    const std::string at = where(path, *node) + ": " + o->name + ": ";
    std::vector<std::string> values;
    if (!command_line_values(*node, o->kind, &values)) {
      std::string got = type_name(node->type());
      if (const toml::array* items = node->as_array()) {
        for (const toml::node& item : *items) {
          if (!item.is_string()) {
            got = std::string("an array holding ") + type_name(item.type());
            break;
          }
        }
      }
      return error(ErrorCode::kBadRequest, at + "expected " + expected(o->kind) + ", not " + got);
    }
    const bool skip = std::find(overridden.begin(), overridden.end(), o->name) != overridden.end();
    Config* target = skip ? &scratch : config;
    for (const auto& v : values) {
      if (Status s = o->set(target, v); !s.ok()) {
        return error(ErrorCode::kBadRequest, at + s.message());
      }
    }
  }
  return {};
}

std::string to_toml(const Config& config) {
  std::string out =
      "# modelpoold configuration in effect (modelpoold --print-config).\n"
      "# Read by modelpoold --config FILE; options on the command line override it.\n";
  for (const auto& o : config_options()) {
    if (o.command_line_only) continue;
    const std::string value = toml_value(o, o.get(config));
    out += std::string("\n# ") + o.help + "\n";
    out += value.empty() ? std::string("# ") + o.name + ": not set\n"
                         : std::string(o.name) + " = " + value + "\n";
  }
  return out;
}

}  // namespace modelpool::broker
