import Foundation

/// One measured figure beside the baseline measured in the same run.
struct BenchMetric: Codable {
    var name: String
    var value: Double
    var unit: String
    var baseline_name: String
    var baseline_value: Double
    /// value / baseline_value.
    var ratio: Double

    init(name: String, value: Double, unit: String, baselineName: String, baselineValue: Double) {
        self.name = name
        self.value = value
        self.unit = unit
        self.baseline_name = baselineName
        self.baseline_value = baselineValue
        self.ratio = baselineValue == 0 ? 0 : value / baselineValue
    }
}

/// A section that failed on its retry too.
struct BenchFailure: Codable {
    var section: String
    var error: String
}

/// `build/bench/results.json`: the format every benchmark of the project reports in.
struct BenchReport: Codable {
    var metrics: [BenchMetric] = []
    /// Sections that failed twice: what they would have measured is missing from `metrics`.
    var failures: [BenchFailure] = []

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try encoder.encode(self).write(to: url)
    }

    func printTable() {
        let nameWidth = max(4, metrics.map(\.name.count).max() ?? 0)
        let baseWidth = max(8, metrics.map(\.baseline_name.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s.padding(toLength: w, withPad: " ", startingAt: 0) }
        print(pad("METRIC", nameWidth) + "  " + pad("VALUE", 12) + pad("UNIT", 8) + pad("BASELINE", baseWidth) + "  " + pad("BASELINE VALUE", 16) + "RATIO")
        for m in metrics {
            print(pad(m.name, nameWidth) + "  " + pad(String(format: "%.2f", m.value), 12) + pad(m.unit, 8) + pad(m.baseline_name, baseWidth) + "  "
                  + pad(String(format: "%.2f", m.baseline_value), 16) + String(format: "%.3f", m.ratio))
        }
        for f in failures { print("FAILED section \(f.section): \(f.error)") }
    }
}

/// The median of `runs` measurements.
func median(_ runs: Int, _ measure: () throws -> Double) rethrows -> Double {
    var values: [Double] = []
    for _ in 0..<runs { values.append(try measure()) }
    values.sort()
    return values[values.count / 2]
}
