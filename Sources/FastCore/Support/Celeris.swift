import Foundation

/// The package version reported in events and stats.
public enum Celeris {
    public static let version = "0.1.0"
}
