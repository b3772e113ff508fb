using GradFlow.Cli;

return CliApp.Run(args);
