import { writeFileAtomic } from '@kiln/core/node';
import type { DataLoader } from '@kiln/data';
import { TensorBoardLogger, confusionMatrixPng, evaluateClassifier, type Logger, type TrainingModule } from '@kiln/trainer';

/** What `kiln train` and `kiln evaluate` report about a classifier on a test split, beyond accuracy and loss. */
export interface TestReport {
  /** Per-class precision / recall / F1 / support and their micro, macro and weighted averages (scikit-learn's definitions). */
  test_report: Record<string, number>;
  /** The test confusion matrix as a PNG (rows: true class, columns: predicted; class names on both axes). */
  confusion_matrix: string;
}

/**
 * Runs the classifier over `loader` once more to count its confusion matrix, writes it as a PNG
 * to `file` (and as an image to any TensorBoard logger among `loggers`), and returns the per-class
 * precision, recall and F1 for the summary.
 */
export async function testReport(
  module: TrainingModule,
  loader: DataLoader,
  classes: string[],
  file: string,
  loggers: readonly Logger[],
  step: number,
  err: (line: string) => void,
): Promise<TestReport> {
  const { confusionMatrix, summary } = await evaluateClassifier(module, loader, { numClasses: classes.length, classNames: classes });
  const png = confusionMatrixPng(confusionMatrix, classes);
  writeFileAtomic(file, png);
  for (const l of loggers) if (l instanceof TensorBoardLogger) await l.logImage('test/confusion_matrix', png, step);
  err(`test: confusion matrix written to ${file}`);
  return { test_report: summary, confusion_matrix: file };
}
