import ECIAgent

print("eci-agent: not yet implemented")
