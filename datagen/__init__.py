"""Built-in synthetic data generator in the Kaggle "Store Sales - Time Series Forecasting" file format.

The generator writes the files of the Corporacion Favorita competition (``train.csv``, ``test.csv``,
``stores.csv``, ``oil.csv``, ``holidays_events.csv``, ``transactions.csv``) plus ``scenario.json`` with the
ground truth of an optional injected change (drift, data-quality burst, closures, a new store or family, a
stopped feed). Sales are simulated on a (day x store x family) array with numpy: store and family scale,
trend, weekly and yearly seasonality, paydays, promotions, holidays and the 2016 Manabi earthquake, times
day-to-day independent multiplicative noise, so that a model using lags, rolling means, promotions and
calendar features clearly beats a seasonal-naive forecast. The same seed always gives byte-identical
files, and a scenario leaves every row before its change date identical to the ``none`` scenario.

Modules: `catalog` (scenarios, families, stores, fixed parameters), `calendar` (holidays, oil),
`sales` (the sales model), `simulate` (a whole data set with its scenario), `write` (`generate`).
"""

from datagen.catalog import FAMILIES, SCENARIOS
from datagen.write import GenerateResult, generate

__all__ = ["FAMILIES", "SCENARIOS", "GenerateResult", "generate"]
