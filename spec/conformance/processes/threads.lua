-- The threads runtime with rt.ProcessExecutor in place of rt.Executor (see
-- spec/conformance/process_executor.lua).
return require("conformance.process_executor").runtime("threads")
