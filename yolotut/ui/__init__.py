"""What a person looks at: plotly figures and ipywidgets controls."""
