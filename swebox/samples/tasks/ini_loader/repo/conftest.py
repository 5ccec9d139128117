# Lets ``python -m pytest`` import ``tinyini`` straight from the checkout.
