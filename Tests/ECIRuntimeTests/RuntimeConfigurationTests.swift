import ECICore
import ECIPolicy
import Testing

@testable import ECIRuntime

@Suite struct RuntimeConfigurationTests {
    /// ECI's own state directory is restricted wherever it is configured, whatever the policy
    /// file says: an attack round bound a state directory the policy did not name as a volume
    /// and wrote "locked" into a neighbour's eci-init status file.
    @Test func stateDirectoryIsAlwaysRestricted() throws {
        var configuration = RuntimeConfiguration()
        configuration.stateDirectory = "/srv/eci-state"
        configuration.policyPath = "/nonexistent/policy.json"
        let policy = try configuration.loadPolicy()
        #expect(policy.restrictedPaths.contains("/srv/eci-state"))
        // The defaults stay in force besides it.
        #expect(Set(RestrictedMountPolicy.defaults.restrictedPaths).isSubset(of: Set(policy.restrictedPaths)))
    }
}
