internal import Foundation

/// The `Date` header's value (RFC 9110 IMF-fixdate, `Thu, 03 Dec 2026 10:43:30 GMT`), formatted once a second.
struct HTTPDate {
    private var second: Int = -1
    private var text = ""

    /// The value for now.
    mutating func now() -> String {
        value(at: Int(Date().timeIntervalSince1970))
    }

    /// The value for `seconds` since 1970.
    mutating func value(at seconds: Int) -> String {
        if seconds != second {
            second = seconds
            text = Self.format(seconds)
        }
        return text
    }

    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ seconds: Int) -> String {
        let day = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - day * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = days[((day % 7) + 7) % 7]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekday), \(two(dayOfMonth)) \(months[month - 1]) \(year) \(two(time / 3_600)):"
            + "\(two(time % 3_600 / 60)):\(two(time % 60)) GMT"
    }
}
