// File: broker/server/report_json.hpp
//
// The wire form of the Service's reports (reports.hpp): the fields of the
// admin replies docs/protocol.md lists, and the stats the metrics page
// renders.
#ifndef MODELPOOL_BROKER_SERVER_REPORT_JSON_HPP_
#define MODELPOOL_BROKER_SERVER_REPORT_JSON_HPP_

#include <nlohmann/json.hpp>
#include <vector>

#include "broker/server/reports.hpp"

namespace modelpool::broker {

nlohmann::json to_json(const ModelRow& row);
nlohmann::json to_json(const std::vector<ModelRow>& rows);  // an array of rows
nlohmann::json to_json(const StatsReport& stats);
nlohmann::json to_json(const Evicted& e);
nlohmann::json to_json(const PinState& p);
nlohmann::json to_json(const Cleared& c);
nlohmann::json to_json(const SelfCheck& c);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_REPORT_JSON_HPP_
