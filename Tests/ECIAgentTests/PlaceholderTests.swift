import Testing
@testable import ECIAgent

@Test func agentModuleLinks() { _ = ECIAgentModule.self }
